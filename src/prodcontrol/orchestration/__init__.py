"""Prefect flows, tasks, gate pause/resume and deployments: the only package that imports prefect.

This ``__init__`` imports no Prefect (the CLI loads it for :func:`listen_for_decisions`), and
the core never imports the submodules, so an Airflow virtual environment without Prefect can use
everything else. Import the submodules directly:
:mod:`.flows` (control run, sweep, escalation ticker), :mod:`.gate_wait` (pause/suspend on a
gate and resume it from a decision made anywhere), :mod:`.deploy` (deployments per tier),
:mod:`.runtimes` (how flows find their Runtime) and :mod:`.compute` (the measurement workers).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prodcontrol.evidence.records import Gate
    from prodcontrol.runtime import Runtime


def resume_after_decision(rt: Runtime, gate: Gate) -> None:
    """A decisions listener: resume the flow run waiting on ``gate`` once it closed.

    Cheap when there is nothing to do, and Prefect is imported only when there is: a gate that
    names a flow run, and a Prefect server in ``PREFECT_API_URL`` (on the embedded default the
    waiting run's own watcher resumes it, and the escalation ticker's poller catches the rest).
    """
    if gate.status == "pending" or not gate.flow_run_id or not os.environ.get("PREFECT_API_URL"):
        return
    try:
        from prodcontrol.orchestration.gate_wait import resume_waiting_run
    except ImportError:  # an environment without Prefect (the Airflow venv)
        return
    resume_waiting_run(rt, gate)


def listen_for_decisions() -> None:
    """Have every decision made in this process resume the run waiting on its gate."""
    from prodcontrol import decisions

    decisions.add_gate_listener(resume_after_decision)
