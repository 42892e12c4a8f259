"""Adapters: one module (or package) per outside system, each implementing a port from
:mod:`prodcontrol.ports`. Only code in here imports an SDK."""
