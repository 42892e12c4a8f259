"""Benchmarks with recorded results (bench/README.md); run by ``python -m bench``, not pytest."""
