"""The EvidenceStore's rules, stated once: the SQL store and the in-memory fake both call them.

Each function takes what a store call was given and the record as it stands (with the
transaction's ``now``) and either refuses, with the error the port documents, or says what to
write: a new record, or the fields that change (the SQL store sets them on its row, the fake on
a copy of its record). How rows are found, locked and kept is each store's own business; what
a write means is decided here, so the two cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import DecisionRefused, StoreConflict, UsageError
from prodcontrol.evidence.port import AttemptReport, FirstStep, RunClosed, RunFollowUp
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    ActionStatus,
    Artifact,
    ArtifactIn,
    ControlRun,
    Decision,
    DecisionIn,
    DeliveryAttempt,
    DomainEvent,
    DomainEventIn,
    DomainEventStatus,
    Escalation,
    EscalationIn,
    Finding,
    FindingIn,
    FindingStatus,
    Gate,
    GateIn,
    Notification,
    NotificationIn,
    RunStatus,
    Verdict,
    VerdictIn,
    Waiver,
    WaiverIn,
)

CLOSED_FINDING = frozenset({"resolved", "closed"})
"""Finding statuses that carry a ``closed_at``."""


def new_id() -> str:
    return str(uuid.uuid4())


def stored_values(record: BaseModel) -> dict[str, Any]:
    """A record's fields as a row holds them: Python values, but dicts as their JSON-mode dump.

    That way a JSON column holds exactly what the event payload holds (no datetimes or NaN
    hiding inside a dict), and a row can later be compared with its event.
    """
    python = record.model_dump()
    as_json = record.model_dump(mode="json")
    return {
        key: as_json[key] if isinstance(value, dict) else value for key, value in python.items()
    }


def check_free_payload(payload: Mapping[str, Any]) -> None:
    """A free log entry (``record_event``) cannot pass itself off as a row's event."""
    if "record" in payload:
        raise UsageError(
            "the payload key 'record' is reserved for the store's row events; name it differently"
        )


# --------------------------------------------------------------------------- runs


def check_run_outputs(
    verdicts: Sequence[VerdictIn],
    artifacts: Sequence[ArtifactIn],
    findings: Sequence[FindingIn],
) -> None:
    """Refuse, before writing anything, outputs whose references do not add up."""
    controls = [v.control_id for v in verdicts]
    problems = [
        f"two verdicts for control {c!r}" for c in sorted(set(controls)) if controls.count(c) > 1
    ]
    known = set(controls)
    flagged = [f.control_id for f in findings]
    problems += [
        f"two findings for control {c!r}" for c in sorted(set(flagged)) if flagged.count(c) > 1
    ]
    problems += [
        f"artifact {a.name!r} names control {a.control_id!r}, which has no verdict"
        for a in artifacts
        if a.control_id is not None and a.control_id not in known
    ]
    problems += [
        f"finding for control {f.control_id!r} has no verdict in this run"
        for f in findings
        if f.control_id not in known
    ]
    if problems:
        raise UsageError("cannot record the run: " + "; ".join(problems))


def check_closing(call: str, status: RunStatus) -> None:
    """``finish_run``/``close_run`` end a run: ``running`` is not an end."""
    if status == "running":
        raise UsageError(f"{call} needs a final status: succeeded, failed or error")


def new_run(  # noqa: PLR0917 - the fields of a run, as start_run takes them
    model: str,
    model_version: str,
    tier: str,
    trigger: str,
    idempotency_key: str | None,
    flow_run_id: str | None,
    sample: dict[str, Any] | None,
    now: datetime,
) -> ControlRun:
    return ControlRun(
        id=new_id(),
        model=model,
        model_version=model_version,
        tier=tier,
        trigger=trigger,
        flow_run_id=flow_run_id,
        idempotency_key=idempotency_key,
        status="running",
        started_at=now,
        sample=sample or {},
    )


def same_run(existing: ControlRun, model: str, model_version: str) -> ControlRun:
    """The run an idempotency key already names, if it is of the same model version."""
    if (existing.model, existing.model_version) != (model, model_version):
        raise StoreConflict(
            f"idempotency key {existing.idempotency_key!r} already belongs to run {existing.id} "
            f"of {existing.model} version {existing.model_version}; use a key unique to each run"
        )
    return existing


def check_running(run_id: str, status: str) -> None:
    if status != "running":
        raise StoreConflict(f"run {run_id} already finished with status {status}")


def new_verdict(verdict: VerdictIn, run_id: str, now: datetime) -> Verdict:
    return Verdict(**verdict.model_dump(), id=new_id(), run_id=run_id, created_at=now)


def new_artifact(
    artifact: ArtifactIn, run_id: str, by_control: Mapping[str, Verdict], now: datetime
) -> Artifact:
    """The artifact, linked to the verdict it explains (if it names a control)."""
    verdict = by_control.get(artifact.control_id) if artifact.control_id else None
    return Artifact(
        **artifact.model_dump(exclude={"control_id"}),
        id=new_id(),
        run_id=run_id,
        verdict_id=verdict.id if verdict else None,
        created_at=now,
    )


def new_finding(
    finding: FindingIn, run: ControlRun, by_control: Mapping[str, Verdict], now: datetime
) -> Finding:
    """The finding, with the verdict of its control in the same run (checked beforehand)."""
    verdict = by_control[finding.control_id]
    return Finding(
        **finding.model_dump(),
        id=new_id(),
        run_id=run.id,
        verdict_id=verdict.id,
        model=run.model,
        model_version=run.model_version,
        verdict=verdict.verdict,
        opened_at=now,
        closed_at=now if finding.status in CLOSED_FINDING else None,
    )


def joined_context(gate: Gate, findings: Sequence[Finding]) -> tuple[dict[str, Any], str] | None:
    """A later run joining the version's pending gate: the gate's new context (its findings
    and controls with the run's open blocking findings added) and the joining run, or None
    when the run adds nothing."""
    joining = [f for f in findings if f.blocking and f.status == "open"]
    listed = [str(i) for i in gate.context.get("findings") or [gate.finding_id] if i]
    new = [f for f in joining if f.id not in listed]
    if not new:
        return None
    controls = [str(c) for c in gate.context.get("controls") or []]
    context = gate.context | {
        "findings": listed + [f.id for f in new],
        "controls": controls + [f.control_id for f in new if f.control_id not in controls],
    }
    return context, new[0].run_id


def follow_up_run(
    follow_up: RunFollowUp,
    run: ControlRun,
    verdicts: list[Verdict],
    findings: list[Finding],
    pending: Gate | None,
    *,
    join_gate: Callable[[Gate], Gate],
    open_gate: Callable[[GateIn], Gate],
    has_chain: Callable[[Gate], bool],
    start_chain: Callable[[FirstStep], Escalation],
) -> RunClosed:
    """What ``close_run`` writes after the run's outputs: one bad run reaches people once.

    The application chooses the run's gate: the version's ``pending`` finding gate (joined),
    a new one, or none; then the run's chain starts, unless its gate already has one. The
    callables make those writes in the store's transaction; the caller logs the run last.
    """
    chosen = follow_up.gate(run, findings, pending)
    gate: Gate | None = None
    joined = False
    if isinstance(chosen, Gate):
        gate, joined = join_gate(chosen), True
    elif chosen is not None:
        gate = open_gate(chosen)
    escalation = None
    if gate is None or not has_chain(gate):
        step = follow_up.first_step(run, verdicts, findings, gate)
        if step is not None:
            escalation = start_chain(step)
    return RunClosed(
        run=run,
        verdicts=verdicts,
        findings=findings,
        gate=gate,
        joined=joined,
        escalation=escalation,
    )


def finding_status(status: FindingStatus, now: datetime) -> dict[str, Any]:
    """The fields a finding's new status sets."""
    return {"status": status, "closed_at": now if status in CLOSED_FINDING else None}


def finding_conflict(
    finding_id: str, actual: str, expected: FindingStatus, status: FindingStatus
) -> StoreConflict:
    return StoreConflict(
        f"finding {finding_id} is {actual}, not {expected}; it was not set {status}"
    )


# --------------------------------------------------------------------------- gates


def new_gate(gate: GateIn, now: datetime) -> Gate:
    return Gate(**gate.model_dump(), id=new_id(), status="pending", opened_at=now, version=1)


def decided_twice(person: str, gate_id: str) -> DecisionRefused:
    return DecisionRefused(
        f"{person} has already decided on gate {gate_id}; each person decides once"
    )


def new_decision(decision: DecisionIn, gate_id: str, now: datetime) -> Decision:
    return Decision(**decision.model_dump(), id=new_id(), gate_id=gate_id, decided_at=now)


def gate_refusal(
    gate_id: str, expected_version: int, version: int, status: str
) -> StoreConflict | DecisionRefused:
    """Why a compare-and-set on a gate did not apply: it changed since it was read (conflict),
    or it is still at that version but no longer pending (refused)."""
    if version != expected_version:
        return StoreConflict(
            f"gate {gate_id} changed since it was read (version {expected_version}, now "
            f"{version}, {status}); re-read the gate and decide again"
        )
    return DecisionRefused(f"gate {gate_id} is already {status}; it takes no decisions")


def gate_action(gate: Gate, action: ActionIn, now: datetime) -> Action:
    """The action a gate's decision or expiry queues: ``requested``, for that gate, due now."""
    if action.status != "requested" or action.gate_id not in (None, gate.id):
        raise UsageError(
            f"a gate queues its own action with status 'requested', not {action.status!r} "
            f"for gate {action.gate_id}"
        )
    return Action(
        **action.model_dump() | {"gate_id": gate.id},
        id=new_id(),
        created_at=now,
        next_attempt_at=now,
    )


def new_action(action: ActionIn, now: datetime) -> Action:
    """An action recorded on its own; only a ``requested`` one is due (now)."""
    due = now if action.status == "requested" else None
    return Action(**action.model_dump(), id=new_id(), created_at=now, next_attempt_at=due)


def leased(until: datetime) -> dict[str, Any]:
    """The fields of an action or domain event handed to one applier until ``until``; due
    again (claimable by another) once the lease has run out."""
    return {"status": "applying", "next_attempt_at": until}


def settled_action(
    current: Action,
    status: ActionStatus,
    result: dict[str, Any],
    now: datetime,
    *,
    model_version: str | None,
    retry_at: datetime | None,
    action: ActionKind | None,
    params: dict[str, Any] | None,
) -> dict[str, Any]:
    """The fields that end an action's lease: final, or ``requested`` again at ``retry_at``."""
    if current.status != "applying":
        raise StoreConflict(
            f"action {current.id} is {current.status}, not being applied; it was not "
            f"set {status} (another applier's lease ran out and it took over)"
        )
    changes: dict[str, Any] = {
        "attempts": current.attempts + 1,
        "result": dict(result),
        "model_version": model_version or current.model_version,
        "action": action or current.action,
        "params": dict(params) if params is not None else current.params,
    }
    if status == "requested":
        return changes | {"status": "requested", "next_attempt_at": ensure_utc(retry_at or now)}
    applied = now if status == "applied" else None
    return changes | {"status": status, "next_attempt_at": None, "applied_at": applied}


# --------------------------------------------------------------------------- waivers


def check_waiver_names(finding: Finding, waiver: WaiverIn) -> None:
    """A waiver names the finding's own model and control."""
    if (finding.model, finding.control_id) != (waiver.model, waiver.control_id):
        raise UsageError(
            f"finding {finding.id} is about {finding.model}/{finding.control_id}, not "
            f"{waiver.model}/{waiver.control_id}; waive the finding it names"
        )


def new_waiver(waiver: WaiverIn, now: datetime) -> Waiver:
    return Waiver(**waiver.model_dump(), id=new_id(), granted_at=now)


# --------------------------------------------------------------------------- domain events


def new_domain_event(event: DomainEventIn, now: datetime) -> DomainEvent:
    return DomainEvent(
        **event.model_dump(), id=new_id(), status="pending", created_at=now, next_attempt_at=now
    )


def settled_domain_event(
    current: DomainEvent,
    status: DomainEventStatus,
    result: dict[str, Any],
    now: datetime,
    *,
    retry_at: datetime | None,
) -> dict[str, Any]:
    """The fields that end an event's lease: ``done``/``dead``, or ``pending`` at ``retry_at``."""
    if current.status != "applying":
        raise StoreConflict(
            f"domain event {current.id} is {current.status}, not being handled; it was not "
            f"set {status} (another dispatcher's lease ran out and it took over)"
        )
    changes: dict[str, Any] = {"attempts": current.attempts + 1, "result": dict(result)}
    if status == "pending":
        return changes | {"status": "pending", "next_attempt_at": ensure_utc(retry_at or now)}
    done = now if status == "done" else None
    return changes | {"status": status, "next_attempt_at": None, "done_at": done}


# --------------------------------------------------------------------------- escalations


def new_escalation(escalation: EscalationIn, now: datetime) -> Escalation:
    return Escalation(**escalation.model_dump(), id=new_id(), status="active", started_at=now)


def advanced_escalation(
    current: Escalation, step: int, next_due_at: datetime | None, now: datetime
) -> dict[str, Any]:
    """The fields that move an active chain on to a later ``step`` (none due: exhausted)."""
    if current.status != "active" or step <= current.step:
        raise StoreConflict(
            f"escalation {current.id} is {current.status} at step {current.step}; it cannot "
            f"move to step {step}. Re-read it: someone acknowledged or advanced it first"
        )
    changes: dict[str, Any] = {"step": step, "next_due_at": next_due_at}
    if next_due_at is None:
        changes |= {"status": "exhausted", "closed_at": now}
    return changes


def acknowledged_escalation(
    current: Escalation, person: str, now: datetime
) -> dict[str, Any] | None:
    """The fields that stop the chain, or None: the first acknowledgement (or a resolved
    chain) stays as it is."""
    if current.acknowledged_at is not None or current.status == "resolved":
        return None
    return {
        "status": "acknowledged",
        "acknowledged_by": person,
        "acknowledged_at": now,
        "next_due_at": None,
    }


def resolved_escalation(current: Escalation, now: datetime) -> dict[str, Any] | None:
    """The fields that close the chain because its cause went away; None if it is closed."""
    if current.status == "resolved":
        return None
    return {"status": "resolved", "closed_at": now, "next_due_at": None}


# --------------------------------------------------------------------------- outbox

FINAL_NOTIFICATION = frozenset({"sent", "dead"})
"""A message in one of these states keeps it: a late report cannot resurrect it."""


def model_in(payload: Mapping[str, Any]) -> str | None:
    """The model a message is about, when its payload says, so its events can be filtered."""
    model = payload.get("model")
    return model if isinstance(model, str) else None


def new_notification(
    message: NotificationIn,
    now: datetime,
    findings_by_control: Mapping[str, str] | None = None,
    **links: str | None,
) -> Notification:
    """A pending message; ``links`` fill ``gate_id``/``escalation_id``/``finding_id`` the
    caller could not know (written in the same transaction), and ``control_id`` names a
    finding only among ``findings_by_control`` (the run's, inside finish_run)."""
    fields = message.model_dump(exclude={"control_id", "next_attempt_at"})
    for name, value in links.items():
        fields[name] = fields[name] or value
    fields["finding_id"] = fields["finding_id"] or _finding_for(message, findings_by_control)
    return Notification(
        **fields,
        id=new_id(),
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=message.next_attempt_at or now,
    )


def _finding_for(message: NotificationIn, findings: Mapping[str, str] | None) -> str | None:
    if message.control_id is None:
        return None
    if findings is None or message.control_id not in findings:
        raise UsageError(
            f"notification {message.idempotency_key!r} names control {message.control_id!r}, "
            "but no finding for that control is written with it; control_id links a message to "
            "a finding only inside finish_run, elsewhere pass finding_id"
        )
    return findings[message.control_id]


def delivery(
    current: Notification, report: AttemptReport, now: datetime
) -> tuple[DeliveryAttempt, dict[str, Any]]:
    """One attempt to log, and the fields that move the message on (its lease ends; a message
    already ``sent`` or ``dead`` keeps that status)."""
    attempt = report.attempt
    record = DeliveryAttempt(
        **attempt.model_dump(exclude={"attempted_at"}),
        id=new_id(),
        notification_id=current.id,
        attempted_at=attempt.attempted_at or now,
    )
    changes: dict[str, Any] = {"attempts": current.attempts + 1, "claimed_until": None}
    if current.status not in FINAL_NOTIFICATION:
        changes |= {
            "status": report.status,
            "last_error": attempt.error,
            "sent_at": now if report.status == "sent" else current.sent_at,
            "next_attempt_at": ensure_utc(report.next_attempt_at or current.next_attempt_at),
            "provider_ref": dict(report.provider_ref or current.provider_ref),
        }
    return record, changes
