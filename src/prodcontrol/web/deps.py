"""FastAPI dependencies shared by the web routers (Slack endpoint, evidence browser)."""

from __future__ import annotations

import threading

from fastapi import Request

from prodcontrol.runtime import Runtime

_lock = threading.Lock()


def get_runtime(request: Request) -> Runtime:
    """The app's Runtime: ``app.state.runtime`` (set by ``create_app``), else one from settings.

    Tests put their own Runtime (fakes, a ManualClock, a local Slack server) on
    ``app.state.runtime`` or override this dependency.
    """
    state = request.app.state
    runtime: Runtime | None = getattr(state, "runtime", None)
    if runtime is None:
        with _lock:
            runtime = getattr(state, "runtime", None)
            if runtime is None:
                runtime = Runtime.from_options()
                state.runtime = runtime
    return runtime
