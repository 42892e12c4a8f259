"""Where a control's measurement runs: in the task's thread, or in a pool of worker processes.

Drift and data-quality checks are CPU-bound Python (pandas, SciPy, Evidently): threads share one
core. A sweep therefore keeps Prefect's task runs in threads in the flow process, where each one
mostly waits on the API, and sends the measurement itself to a process pool with one worker per
core. That uses every core for the checks and keeps Prefect's per-task cost (its API calls)
overlapped with them, which a task runner that runs each task run in another process does not
(``DaskTaskRunner`` with processes: 0.15-0.3 s per trivial task run here; bench/README.md).
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from prodcontrol.orchestration.runtimes import RuntimeRef, resolve

_pools: dict[int, ProcessPoolExecutor] = {}
_lock = threading.Lock()


def measure(ref: RuntimeRef, ctx: Any, control_id: str, processes: int) -> Any:
    """``checks.measure_control`` for one control, in a worker process when ``processes > 1``."""
    if processes > 1 and ref.crosses_processes:
        return pool(processes).submit(_measure_here, ref.model_dump(), ctx, control_id).result()
    return _measure_here(ref.model_dump(), ctx, control_id)


def _measure_here(ref: dict[str, Any], ctx: Any, control_id: str) -> Any:
    from prodcontrol.control.runs import checks

    return checks.measure_control(resolve(ref), ctx, control_id)


def pool(processes: int) -> ProcessPoolExecutor:
    """One pool per size for the life of the process (workers keep their imports and runtime)."""
    with _lock:
        if processes not in _pools:
            # spawn, not fork: the flow process runs threads and event loops that fork would copy
            context = multiprocessing.get_context("spawn")
            _pools[processes] = ProcessPoolExecutor(max_workers=processes, mp_context=context)
        return _pools[processes]


def warm_up(ref: RuntimeRef, processes: int) -> None:
    """Start the workers and build their runtimes before the first measurement needs them."""
    if processes > 1 and ref.crosses_processes:
        executor = pool(processes)
        futures = [executor.submit(_resolve_only, ref.model_dump()) for _ in range(processes)]
        for future in futures:
            future.result()


def _resolve_only(ref: dict[str, Any]) -> None:
    import prodcontrol.control.runs.checks  # noqa: F401  (the import is the warm-up)

    resolve(ref)


@atexit.register
def shutdown() -> None:
    with _lock:
        for executor in _pools.values():
            executor.shutdown(wait=False, cancel_futures=True)
        _pools.clear()
