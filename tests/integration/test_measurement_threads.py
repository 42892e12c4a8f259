"""The measurement processes of a sweep compute on one thread each (orchestration.compute).

With one process per core, the numeric libraries' own thread pools only compete for the same
cores (OpenBLAS's threads spin while they wait: 5.9 CPU s instead of 3.6 per high-tier model run
at 50,000 rows on the 2-core VM). Checked in the real spawned workers, the way a sweep starts
them; a variable the user set is kept.
"""

from __future__ import annotations

import os

import pytest


def _threads() -> dict[str, object]:
    """In the worker: the variables, and the thread count OpenBLAS really uses."""
    import numpy  # noqa: F401  (loaded here, after the worker's start, as a run loads it)
    from threadpoolctl import threadpool_info

    blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return {
        "env": {name: os.environ.get(name) for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
        "blas": blas,
    }


def _in_a_fresh_worker() -> dict[str, object]:
    """``_threads`` in a new pool's worker: its processes start with this test's environment."""
    from prodcontrol.orchestration import compute

    compute.shutdown()
    try:
        return compute.pool(2).submit(_threads).result(timeout=120)
    finally:
        compute.shutdown()


def test_a_measurement_process_uses_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    found = _in_a_fresh_worker()
    assert found["env"] == {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    assert found["blas"] and all(n == 1 for n in found["blas"]), found  # type: ignore[attr-defined]


def test_a_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    found = _in_a_fresh_worker()
    assert found["env"]["OPENBLAS_NUM_THREADS"] == "2"  # type: ignore[index]
    assert found["blas"] == [2], found
