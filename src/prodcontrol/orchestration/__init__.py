"""Prefect flows, tasks, gate pause/resume and deployments: the only package that imports prefect.

This ``__init__`` imports no Prefect (the composition root loads it for
:func:`prefect_subscribers`), and the core never imports the submodules, so an Airflow virtual
environment without Prefect can use everything else. Import the submodules directly:
:mod:`.flows` (control run, sweep, escalation ticker), :mod:`.gate_wait` (pause/suspend on a
gate and resume it from a decision made anywhere), :mod:`.deploy` (deployments per tier),
:mod:`.runtimes` (how flows find their Runtime) and :mod:`.compute` (the measurement workers).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from prodcontrol.control.gates.events import GATE_CLOSED, Handled, Subscriber

if TYPE_CHECKING:
    from prodcontrol.evidence.port import EvidenceStore
    from prodcontrol.evidence.records import DomainEvent

log = logging.getLogger(__name__)

NO_API_WARNING = (
    "gate {gate} is decided, but flow run {run} cannot be resumed from here: no Prefect API is "
    "reachable (PREFECT_API_URL unset or down). It resumes at the escalation ticker's next tick "
    "(every minute), or sooner if it waits in a pause whose own process sees the decision"
)


def prefect_subscribers(store: EvidenceStore) -> list[Subscriber]:
    """What a closed gate sets off in Prefect: an event for Automations, and resuming the flow
    run that waits on the gate. Subscribers to the gate's domain event (see
    :mod:`prodcontrol.control.gates.events`); the composition root passes them in.

    Cheap when there is nothing to do, and Prefect is imported only when there is: a gate that
    names a flow run, and a Prefect server in ``PREFECT_API_URL``.
    """
    return [
        Subscriber("prefect_event", GATE_CLOSED, lambda event: _emit(store, event)),
        Subscriber("prefect_resume", GATE_CLOSED, lambda event: _resume(store, event)),
    ]


def _emit(store: EvidenceStore, event: DomainEvent) -> Handled:
    """A ``prodcontrol.gate.decided`` Prefect event, where a Prefect API is configured."""
    if not (os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules) or not event.gate_id:
        return Handled(note="no Prefect here")
    try:
        from prodcontrol.orchestration.outcome import emit_gate
    except ImportError:  # an environment without Prefect (the Airflow venv)
        return Handled(note="no Prefect here")
    emit_gate(store.get_gate(event.gate_id), "prodcontrol.gate.decided")
    return Handled(note="emitted")


def _resume(store: EvidenceStore, event: DomainEvent) -> Handled:
    """Resume the flow run waiting on the gate; retried while no Prefect API can be reached.

    Without an API in this process (a CLI or web process outside Prefect) it is left to the
    escalation ticker, which runs in Prefect; the waiting run's own watcher may resume it first.
    """
    flow_run_id = event.payload.get("flow_run_id")
    if not flow_run_id or not event.gate_id:
        return Handled(note="no flow run waits on the gate")
    gate = store.get_gate(event.gate_id)
    if not os.environ.get("PREFECT_API_URL"):
        log.warning(NO_API_WARNING.format(gate=gate.id, run=flow_run_id))
        return Handled(done=False, note="no Prefect API in this process")
    try:
        from prodcontrol.orchestration.gate_wait import resume_flow_run_for
    except ImportError:
        return Handled(done=False, note="Prefect is not installed in this process")
    outcome = resume_flow_run_for(gate, str(flow_run_id))
    if outcome == "unreachable":
        log.warning(NO_API_WARNING.format(gate=gate.id, run=flow_run_id))
    return Handled(done=outcome in ("resumed", "not_waiting"), note=outcome)
