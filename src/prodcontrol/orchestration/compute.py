"""Where a model's control run happens: in the task's thread, or in a pool of worker processes.

Drift and data-quality checks are CPU-bound Python (pandas, SciPy, Evidently): threads share one
core. A sweep therefore keeps Prefect's task runs in threads in the flow process, where each one
mostly waits on the API, and sends the model's whole run (open, measure, its one report, record:
:func:`prodcontrol.orchestration.model_run.record_model`) to a process pool with one worker per
core. That uses every core for the checks and keeps Prefect's per-task cost (its API calls)
overlapped with them, which a task runner that runs each task run in another process does not
(``DaskTaskRunner`` with processes: 0.15-0.3 s per trivial task run here; bench/README.md).

Each worker process computes on one thread: with one process per core, the thread pools that
OpenBLAS and Arrow start by default (one thread per core each) only compete for the same cores,
and OpenBLAS's threads spin while they wait. Measured on the 2-core VM, one high-tier model run at
50,000 rows: 5.9 CPU s (4.4 s wall) with the default pools, 3.6 CPU s (3.6 s wall) with one
thread. A variable the user set for the flow process is kept.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from prodcontrol.orchestration.runtimes import RuntimeRef, resolve
from prodcontrol.orchestration.worker_threads import one_thread

log = logging.getLogger(__name__)
_pools: dict[int, ProcessPoolExecutor] = {}
_lock = threading.Lock()


def record(
    ref: RuntimeRef,
    model: str,
    *,
    key: str,
    flow_run_id: str | None,
    retry_delays: list[float],
    processes: int,
) -> Any:
    """``model_run.record_model`` in a worker process when ``processes > 1``, else here.

    Whatever it raises comes back as a ``ModelRunFailed`` naming the error (an exception of
    another type may not survive the way back from a worker process).
    """
    args = (ref.model_dump(), model, key, flow_run_id, retry_delays)
    if processes > 1 and ref.crosses_processes:
        return pool(processes).submit(_record_here, *args).result()
    return _record_here(*args)


def _record_here(
    ref: dict[str, Any], model: str, key: str, flow_run_id: str | None, delays: list[float]
) -> Any:
    from prodcontrol.orchestration.model_run import ModelRunFailed, record_model

    try:
        return record_model(
            resolve(ref), model, key=key, flow_run_id=flow_run_id, retry_delays=delays
        )
    except ModelRunFailed:
        raise
    except Exception as exc:
        log.exception("the control run of %s could not be done", model)
        code = getattr(exc, "exit_code", 1)
        raise ModelRunFailed(
            f"{type(exc).__name__}: {exc}", code if isinstance(code, int) else 1
        ) from None


def pool(processes: int) -> ProcessPoolExecutor:
    """One pool per size for the life of the process (workers keep their imports and runtime)."""
    with _lock:
        if processes not in _pools:
            # spawn, not fork: the flow process runs threads and event loops that fork would copy
            context = multiprocessing.get_context("spawn")
            _pools[processes] = ProcessPoolExecutor(
                max_workers=processes, mp_context=context, initializer=one_thread
            )
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
