"""A flow run waiting on a gate, and the ways a decision made anywhere resumes it (DESIGN §4).

The evidence store is the source of truth: Prefect's pause and suspend only *wait*. Whoever
closes a gate (CLI, Slack, web page, Airflow, the timeout) writes it through
:func:`prodcontrol.control.gates.decisions.decide` / ``expire_due_gates``; three things then resume
the run:

1. the gate's domain event (:mod:`prodcontrol.control.gates.events`), written with the
   decision and dispatched right after it in whatever process made it, and by every escalation
   tick until done (its ``prefect_resume`` subscriber, see
   :func:`prodcontrol.orchestration.prefect_subscribers`, needs the Prefect API);
2. a watcher thread inside the paused run's own process that reads the gate from the store and
   resumes its own run (so a decision from a process without Prefect still resumes it quickly);
3. :func:`resume_closed_gate_runs`, the poller the escalation ticker runs every minute, for
   suspended runs, which have no process left to watch.

Short waits use ``pause_flow_run`` (the process stays, resumption takes about a second); long
waits, in runs that have a deployment, use ``suspend_flow_run`` so no worker is held: the run
exits and, once resumed, is started again, finds its control run already recorded under the same
idempotency key and its gate already opened, and goes straight on.

A person can also resume the run from the Prefect UI by filling in the :class:`GateInput`
form with their personal token (checked like the CLI's ``PRODCONTROL_TOKEN``: the token says
who decides, never a name typed in); that counts as a decision through the ``web`` channel,
under the same rules. The answer is deleted from Prefect once read, so the token is not kept
there; a bad token is refused and recorded, and the run goes on waiting.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from typing import Any, Literal
from uuid import UUID

from prefect.input import RunInput
from pydantic import Field, SecretStr

from prodcontrol.control.gates import decisions
from prodcontrol.errors import DecisionRefused, StoreConflict
from prodcontrol.evidence.records import Gate
from prodcontrol.identity import service as identity
from prodcontrol.runtime import Runtime

log = logging.getLogger(__name__)

KEY_PREFIX = "gate-"
SHORT_WAIT_S = 15 * 60
"""Gates due sooner than this are waited on with a pause; later ones suspend the run."""
MAX_PAUSE_S = 24 * 3600
GRACE_S = 5 * 60
"""How long a pause outlives its gate's due time, so the ticker can expire the gate first."""


class GateInput(RunInput):
    """What resumes a run waiting on a gate; the Prefect UI shows it as a form."""

    gate_id: str = ""
    status: str = ""
    token: SecretStr | None = Field(
        None, description="your personal token (prodcontrol tokens issue): it says who decides"
    )
    decision: Literal["approve", "reject"] | None = None
    reason: str = ""

    @classmethod
    def of(cls, gate: Gate) -> GateInput:
        return cls(gate_id=gate.id, status=gate.status)


def pause_key(gate: Gate, attempt: int) -> str:
    return f"{KEY_PREFIX}{gate.id}-v{gate.version}-{attempt}"


def gate_of_key(key: str | None) -> str | None:
    """The gate id a pause key names, or None for pauses that are not ours."""
    if not key or not key.startswith(KEY_PREFIX):
        return None
    return key[len(KEY_PREFIX) :].rsplit("-v", 1)[0]


def wait_mode(seconds_left: float, has_deployment: bool, short_wait_s: float) -> str:
    """``suspend`` for long waits in deployed runs, else ``pause`` (suspend needs a deployment)."""
    return "suspend" if has_deployment and seconds_left > short_wait_s else "pause"


# --------------------------------------------------------------------------- inside the flow


def wait_for_gate(
    rt: Runtime,
    gate_id: str,
    *,
    short_wait_s: float = SHORT_WAIT_S,
    poll_s: float = 0.25,
) -> Gate:
    """Block the current flow run until the gate is closed; return the closed gate."""
    from prefect.context import FlowRunContext
    from prefect.flow_runs import pause_flow_run, suspend_flow_run

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise RuntimeError("wait_for_gate runs inside a flow run")
    flow_run_id = context.flow_run.id
    has_deployment = context.flow_run.deployment_id is not None
    attempt = 0
    while True:
        gate = rt.store.get_gate(gate_id)
        if gate.status != "pending":
            return gate
        left = _seconds_left(rt, gate)
        key = pause_key(gate, attempt)
        attempt += 1
        if wait_mode(left, has_deployment, short_wait_s) == "suspend":
            log.info("gate %s due in %.0f s: suspending the run until it is decided", gate.id, left)
            answer = suspend_flow_run(wait_for_input=GateInput, key=key)
        else:
            timeout = int(min(left, MAX_PAUSE_S)) + GRACE_S
            with GateWatcher(rt, gate.id, flow_run_id, poll_s=poll_s):
                answer = pause_flow_run(
                    wait_for_input=GateInput, key=key, timeout=timeout, poll_interval=1
                )
        _apply_form_answer(rt, gate, answer, key)


def _seconds_left(rt: Runtime, gate: Gate) -> float:
    if gate.due_at is None:
        return math.inf
    return max(0.0, (gate.due_at - rt.clock.now()).total_seconds())


def _apply_form_answer(rt: Runtime, gate: Gate, answer: GateInput | None, key: str) -> None:
    """A decision typed into the Prefect UI form goes through the same rules as any other."""
    if answer is None or answer.decision is None:
        return
    _forget_answer(key)
    offered = answer.token.get_secret_value() if answer.token is not None else None
    try:
        actor = identity.authenticate(rt, offered)
    except identity.NotAuthenticated as exc:
        log.warning("decision from the Prefect UI on gate %s refused: %s", gate.id, exc)
        rt.store.record_event(
            "decision_refused",
            "gate",
            gate.id,
            gate.model,
            {"channel": "prefect_form", "refused": "not_authenticated", "why": str(exc)},
        )
        return
    if any(d.person == actor.person for d in rt.store.decisions_for(gate.id)):
        return  # replayed after a suspend: already recorded
    try:
        decisions.decide(
            rt,
            gate.id,
            person=actor.person,
            decision=answer.decision,
            channel="web",
            reason=answer.reason,  # blank: refused and logged, like any channel
            credential=actor.credential,
        )
    except (DecisionRefused, StoreConflict) as exc:
        log.warning("decision from the Prefect UI on gate %s refused: %s", gate.id, exc)


def _forget_answer(key: str) -> None:
    """Delete the form answer (it holds the person's token) from Prefect's run inputs."""
    from prefect.input.actions import delete_flow_run_input

    for state in ("paused", "suspended"):
        try:
            delete_flow_run_input(key=f"{state}-{key}-response")
        except Exception:  # absent under this state name; the other one holds it
            log.debug("no %s answer to delete for %s", state, key)


class GateWatcher:
    """A thread in the paused run's process: when the store says the gate closed, resume the run.

    It also expires the gate once it is due, so a paused run never outlives its gate's timeout
    when no ticker is deployed (the embedded default).
    """

    def __init__(self, rt: Runtime, gate_id: str, flow_run_id: UUID, *, poll_s: float) -> None:
        self.rt, self.gate_id, self.flow_run_id, self.poll_s = rt, gate_id, flow_run_id, poll_s
        self._stop = threading.Event()
        # the Prefect settings (API URL) live in context variables: carry them into the thread
        self._context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=self._context.run, args=(self._watch,), name=f"gate-watch-{gate_id}", daemon=True
        )

    def __enter__(self) -> GateWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                if self._step():
                    return
            except Exception:  # a flaky read must not kill the watcher; the ticker is the backstop
                log.exception("watching gate %s failed; trying again", self.gate_id)

    def _step(self) -> bool:
        gate = self.rt.store.get_gate(self.gate_id)
        if gate.status == "pending":
            if gate.due_at is not None and gate.due_at <= self.rt.clock.now():
                decisions.expire_due_gates(self.rt)
            return False
        return resume_flow_run_for(gate, self.flow_run_id) in ("resumed", "not_waiting")


# --------------------------------------------------------------------------- from anywhere


def resume_flow_run_for(gate: Gate, flow_run_id: UUID | str) -> str:
    """Resume ``flow_run_id`` if it is paused on ``gate``; say what happened.

    ``resumed``; ``not_paused_yet`` (running, about to pause: try again); ``not_waiting`` (paused
    on something else, finished, or gone); ``unreachable`` (no Prefect API).
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    run_id = UUID(str(flow_run_id))
    try:
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(run_id)
            state = flow_run.state
            if state is None or state.is_final():
                return "not_waiting"
            if not state.is_paused():
                return "not_paused_yet" if state.is_running() else "not_waiting"
            if gate_of_key(state.state_details.pause_key) != gate.id:
                return "not_waiting"
            result = client.resume_flow_run(run_id, run_input=GateInput.of(gate).model_dump())
    except ObjectNotFound:
        return "not_waiting"
    except Exception as exc:  # the API is an outside system: the poller will retry
        log.warning("cannot resume flow run %s for gate %s: %s", run_id, gate.id, exc)
        return "unreachable"
    return "resumed" if result.status.value == "ACCEPT" else "not_waiting"


def resume_waiting_run(rt: Runtime, gate: Gate) -> bool:
    """A gate closed: resume the run that opened it if it is waiting on it."""
    del rt
    if gate.status == "pending" or not gate.flow_run_id:
        return False
    return resume_flow_run_for(gate, gate.flow_run_id) == "resumed"


def resume_closed_gate_runs(rt: Runtime) -> list[str]:
    """The poller fallback: resume every paused or suspended run whose gate is closed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    only_paused = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
    )
    with get_client(sync_client=True) as client:
        paused = client.read_flow_runs(flow_run_filter=only_paused, limit=200)
    resumed = []
    for flow_run in paused:
        gate_id = gate_of_key(flow_run.state.state_details.pause_key if flow_run.state else None)
        if gate_id is None:
            continue
        gate = _gate_or_none(rt, gate_id)
        closed = gate is not None and gate.status != "pending"
        if closed and gate and resume_flow_run_for(gate, flow_run.id) == "resumed":
            resumed.append(str(flow_run.id))
    return resumed


def _gate_or_none(rt: Runtime, gate_id: str) -> Gate | None:
    from prodcontrol.evidence.port import RecordNotFound

    try:
        return rt.store.get_gate(gate_id)
    except RecordNotFound:
        return None


def gate_summary(gate: Gate) -> dict[str, Any]:
    return {
        "gate": gate.id,
        "model": gate.model,
        "status": gate.status,
        "approvals": gate.required_approvals,
        "due_at": gate.due_at,
    }
