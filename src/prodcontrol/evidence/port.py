"""The EvidenceStore port: the source of truth for runs, gates, escalations and the outbox.

Every write is one transaction that also appends a chained event for each row it writes, with
the full record as written in the event's payload. Reads return frozen records. The SQL adapter
lives in :mod:`prodcontrol.adapters.store`; nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from prodcontrol.errors import UsageError
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
    DeliveryAttemptIn,
    DomainEvent,
    DomainEventIn,
    DomainEventStatus,
    Escalation,
    EscalationIn,
    EscalationStatus,
    Event,
    EvidenceReport,
    Finding,
    FindingIn,
    FindingStatus,
    Gate,
    GateIn,
    GateStatus,
    HeadSignature,
    Notification,
    NotificationIn,
    NotificationStatus,
    RunStatus,
    Verdict,
    VerdictIn,
    Waiver,
    WaiverIn,
)


class RecordNotFound(UsageError, LookupError):
    """No record with that id: usually a mistyped id on the command line."""

    def __init__(self, kind: str, record_id: str) -> None:
        self.kind, self.record_id = kind, record_id
        super().__init__(
            f"no {kind} with id {record_id!r} in the evidence store; list them to find the right id"
        )


@dataclass(frozen=True)
class AttemptReport:
    """One delivery attempt to record, with where it leaves the message (``record_attempts``)."""

    notification_id: str
    attempt: DeliveryAttemptIn
    status: NotificationStatus
    next_attempt_at: datetime | None = None
    provider_ref: dict[str, Any] | None = None


@dataclass(frozen=True)
class FirstStep:
    """The first step of an escalation chain, with the messages it sends."""

    escalation: EscalationIn
    notifications: Sequence[NotificationIn]


@dataclass(frozen=True)
class RunClosed:
    """What ``close_run`` wrote: the run, its verdicts and findings, its gate and its chain."""

    run: ControlRun
    verdicts: list[Verdict]
    findings: list[Finding]
    gate: Gate | None = None
    joined: bool = False
    escalation: Escalation | None = None


class RunFollowUp(Protocol):
    """What a run's findings set off, decided by the application inside ``close_run``'s
    transaction, so the run, its gate and its chain's first step commit together or not at all.
    """

    def gate(
        self, run: ControlRun, findings: Sequence[Finding], pending: Gate | None
    ) -> Gate | GateIn | None:
        """``pending`` (the version's pending finding gate) to join it, a new gate, or none."""
        ...

    def first_step(
        self,
        run: ControlRun,
        verdicts: Sequence[Verdict],
        findings: Sequence[Finding],
        gate: Gate | None,
    ) -> FirstStep | None:
        """The chain to start for the run (after its gate exists), or none."""
        ...


@runtime_checkable
class EvidenceStore(Protocol):
    """Append-only, hash-chained evidence, and the state of gates, escalations and the outbox."""

    # ------------------------------------------------------------------ runs

    def start_run(
        self,
        model: str,
        model_version: str,
        tier: str,
        trigger: str,
        *,
        idempotency_key: str | None = None,
        flow_run_id: str | None = None,
        sample: dict[str, Any] | None = None,
    ) -> ControlRun:
        """Open a run; with a known ``idempotency_key`` return that run instead."""
        ...

    def finish_run(
        self,
        run_id: str,
        status: RunStatus,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
        *,
        notifications: Sequence[NotificationIn] = (),
    ) -> ControlRun:
        """Close a running run with everything it produced, all in one transaction."""
        ...

    def close_run(
        self,
        run_id: str,
        status: RunStatus,
        verdicts: Sequence[VerdictIn],
        artifacts: Sequence[ArtifactIn],
        findings: Sequence[FindingIn],
        *,
        follow_up: RunFollowUp,
    ) -> RunClosed:
        """``finish_run``, then in the same transaction the run's one gate (new, or the model
        version's pending finding gate joined) and its chain's first step, unless the gate has
        one already. Unique keys refuse a second pending gate per version or chain per lead
        finding (StoreConflict, everything rolled back)."""
        ...

    def get_run(self, run_id: str) -> ControlRun: ...

    def list_runs(
        self, model: str | None = None, since: datetime | None = None, until: datetime | None = None
    ) -> list[ControlRun]: ...

    def verdicts_for(self, run_id: str) -> list[Verdict]: ...

    def latest_verdicts(self, model: str) -> list[Verdict]:
        """The newest verdict of each control for ``model``, over all its runs."""
        ...

    def artifacts_for(self, run_id: str) -> list[Artifact]: ...

    def get_finding(self, finding_id: str) -> Finding: ...

    def list_findings(
        self, model: str | None = None, status: FindingStatus | None = None
    ) -> list[Finding]: ...

    def set_finding_status(
        self,
        finding_id: str,
        status: FindingStatus,
        reason: str,
        *,
        expected: FindingStatus | None = None,
    ) -> Finding:
        """Re-open (expired waiver), resolve or close a finding.

        With ``expected``, a conditional update: StoreConflict unless the finding still has
        that status (an expiry cannot reopen what a decision just closed).
        """
        ...

    # ------------------------------------------------------------------ gates

    def open_gate(self, gate: GateIn, notifications: Sequence[NotificationIn] = ()) -> Gate: ...

    def get_gate(self, gate_id: str) -> Gate: ...

    def list_gates(
        self, status: GateStatus | None = None, model: str | None = None
    ) -> list[Gate]: ...

    def record_decision(
        self,
        gate_id: str,
        decision: DecisionIn,
        expected_version: int,
        new_status: Literal["approved", "rejected"] | None,
        *,
        action: ActionIn | None = None,
        events: Sequence[DomainEventIn] = (),
    ) -> Gate:
        """Compare-and-set: applies only if the gate is pending at ``expected_version``.

        Raises StoreConflict when someone else changed the gate first, DecisionRefused when the
        gate is no longer pending or the person already decided on it. ``action`` (status
        ``requested``) and ``events`` (``gate_decided``) are queued in the same transaction:
        the decision, the action it asks for and what it tells the rest of the loop commit
        together.
        """
        ...

    def decisions_for(self, gate_id: str) -> list[Decision]: ...

    def expire_gate(
        self,
        gate_id: str,
        expected_version: int,
        *,
        action: ActionIn | None = None,
        events: Sequence[DomainEventIn] = (),
    ) -> Gate:
        """Compare-and-set to ``expired``; its timeout action and events in the same transaction."""
        ...

    # ------------------------------------------------------------------ domain events

    def claim_domain_events(
        self,
        now: datetime,
        *,
        gate_id: str | None = None,
        limit: int = 100,
        lease_seconds: float = 60.0,
    ) -> list[DomainEvent]:
        """Lease the pending events due at ``now`` (status ``applying`` until the lease ends);
        no two dispatchers get the same one. A lease that ran out is claimable again."""
        ...

    def settle_domain_event(
        self,
        event_id: str,
        status: DomainEventStatus,
        result: dict[str, Any],
        *,
        retry_at: datetime | None = None,
    ) -> DomainEvent:
        """End an ``applying`` lease: ``done``/``dead``, or back to ``pending`` at ``retry_at``
        (one attempt more). StoreConflict if not leased."""
        ...

    def list_domain_events(
        self, status: DomainEventStatus | None = None, gate_id: str | None = None
    ) -> list[DomainEvent]: ...

    # ------------------------------------------------------------------ waivers and actions

    def grant_waiver(self, waiver: WaiverIn) -> Waiver:
        """Record the waiver and mark its finding waived."""
        ...

    def list_waivers(
        self, model: str | None = None, active_at: datetime | None = None
    ) -> list[Waiver]: ...

    def revoke_waiver(self, waiver_id: str, by: str, reason: str) -> Waiver:
        """Revoke now; a finding that was waived by it is open again."""
        ...

    def record_action(self, action: ActionIn) -> Action: ...

    def claim_actions(
        self, now: datetime, *, gate_id: str | None = None, lease_seconds: float = 300.0
    ) -> list[Action]:
        """Lease the requested actions due at ``now`` (status ``applying`` until the lease ends);
        no two appliers get the same one. A lease that ran out is claimable again."""
        ...

    def settle_action(
        self,
        action_id: str,
        status: ActionStatus,
        result: dict[str, Any],
        *,
        model_version: str | None = None,
        retry_at: datetime | None = None,
        action: ActionKind | None = None,
        params: dict[str, Any] | None = None,
    ) -> Action:
        """End an ``applying`` lease: ``applied``/``skipped``/``dead``/``failed``, or back to
        ``requested`` at ``retry_at`` (one attempt more). StoreConflict if not leased."""
        ...

    def list_actions(self, model: str | None = None) -> list[Action]: ...

    # ------------------------------------------------------------------ escalations

    def start_escalation(
        self, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation: ...

    def advance_escalation(
        self,
        escalation_id: str,
        step: int,
        next_due_at: datetime | None,
        notifications: Sequence[NotificationIn] = (),
    ) -> Escalation:
        """Move an active escalation to a later ``step``; ``next_due_at=None`` exhausts it."""
        ...

    def acknowledge_escalation(self, escalation_id: str, person: str) -> Escalation:
        """Stop the chain; acknowledging twice keeps the first acknowledgement."""
        ...

    def resolve_escalation(self, escalation_id: str, reason: str) -> Escalation:
        """Close the escalation because its cause went away (gate decided, finding resolved)."""
        ...

    def get_escalation(self, escalation_id: str) -> Escalation: ...

    def list_escalations(self, status: EscalationStatus | None = None) -> list[Escalation]: ...

    def escalations_for_findings(self, finding_ids: Sequence[str]) -> list[Escalation]:
        """The escalations of these findings (any status), oldest first."""
        ...

    # ------------------------------------------------------------------ outbox

    def enqueue(self, notifications: Sequence[NotificationIn]) -> list[Notification]:
        """Write messages to the outbox; a key already there returns the existing row."""
        ...

    def claim_due_notifications(
        self, now: datetime, limit: int, lease_seconds: float = 300.0
    ) -> list[Notification]:
        """Lease up to ``limit`` due messages to this sender; no two senders get the same one."""
        ...

    def record_attempt(
        self,
        notification_id: str,
        attempt: DeliveryAttemptIn,
        status: NotificationStatus,
        next_attempt_at: datetime | None = None,
        provider_ref: dict[str, Any] | None = None,
    ) -> Notification: ...

    def record_attempts(self, attempts: Sequence[AttemptReport]) -> list[Notification]:
        """``record_attempt`` for each report, all in one transaction (one commit per batch).

        Same rules per report as ``record_attempt``; each still gets its own chained events.
        An unknown notification id rolls the whole batch back (RecordNotFound).
        """
        ...

    def list_notifications(
        self, status: NotificationStatus | None = None
    ) -> list[Notification]: ...

    def attempts_for(self, notification_id: str) -> list[DeliveryAttempt]: ...

    def notifications_about(
        self, *, finding_id: str | None = None, gate_id: str | None = None
    ) -> list[Notification]:
        """Messages linked to the finding or to the gate (either matches), oldest first."""
        ...

    # ------------------------------------------------------------------ the event log

    def record_event(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        """Append a chained entry that has no table of its own (a refused decision, say)."""
        ...

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]: ...

    def chain_head(self) -> tuple[int, str]:
        """``(seq, hash)`` of the newest entry; ``(0, GENESIS)`` for an empty log."""
        ...

    def latest_event(self, kind: str) -> Event | None:
        """The newest entry of ``kind`` (the last anchoring, say), or None."""
        ...

    def head_signatures(self, after_seq: int = 0) -> list[HeadSignature]:
        """The signatures of committed heads after ``after_seq``, oldest first."""
        ...

    def verify(self) -> EvidenceReport:
        """Check the hash chain, and that every table row still equals its newest event."""
        ...
