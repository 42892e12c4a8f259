"""Prefect flows, tasks, gate pause/resume and deployments: the only package that imports prefect.

This ``__init__`` imports no Prefect (the CLI loads it for :func:`listen_for_decisions`), and
the core never imports the submodules, so an Airflow virtual environment without Prefect can use
everything else. Import the submodules directly:
:mod:`.flows` (control run, sweep, escalation ticker), :mod:`.gate_wait` (pause/suspend on a
gate and resume it from a decision made anywhere), :mod:`.deploy` (deployments per tier),
:mod:`.runtimes` (how flows find their Runtime) and :mod:`.compute` (the measurement workers).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prodcontrol.evidence.records import Gate
    from prodcontrol.runtime import Runtime

log = logging.getLogger(__name__)

NO_API_WARNING = (
    "gate {gate} is decided, but flow run {run} cannot be resumed from here: no Prefect API is "
    "reachable (PREFECT_API_URL unset or down). It resumes at the escalation ticker's next tick "
    "(every minute), or sooner if it waits in a pause whose own process sees the decision"
)


def resume_after_decision(rt: Runtime, gate: Gate) -> None:
    """A decisions listener: resume the flow run waiting on ``gate`` once it closed.

    Cheap when there is nothing to do, and Prefect is imported only when there is: a gate that
    names a flow run, and a Prefect server in ``PREFECT_API_URL``. Without one, it says the run
    resumes at the escalation ticker's next tick (whose poller does it), and on the embedded
    default the waiting run's own watcher resumes it. Where a Prefect API is configured, a
    ``prodcontrol.gate.decided`` event is emitted for Prefect Automations.
    """
    if gate.status == "pending":
        return
    api = bool(os.environ.get("PREFECT_API_URL"))
    if api or "prefect" in sys.modules:
        try:
            from prodcontrol.orchestration.outcome import emit_gate
        except ImportError:  # an environment without Prefect (the Airflow venv)
            return
        emit_gate(gate, "prodcontrol.gate.decided")
    if not gate.flow_run_id:
        return
    if not api:
        log.warning(NO_API_WARNING.format(gate=gate.id, run=gate.flow_run_id))
        return
    try:
        from prodcontrol.orchestration.gate_wait import resume_flow_run_for
    except ImportError:
        return
    if resume_flow_run_for(gate, gate.flow_run_id) == "unreachable":
        log.warning(NO_API_WARNING.format(gate=gate.id, run=gate.flow_run_id))


def listen_for_decisions() -> None:
    """Have every decision made in this process resume the run waiting on its gate."""
    from prodcontrol.control.gates import decisions

    decisions.add_gate_listener(resume_after_decision)
