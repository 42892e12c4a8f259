"""What the evidence store keeps, as plain pydantic records (no SQLAlchemy here).

Each entity comes in two shapes: ``...In`` is what a caller hands to the store, the bare name is
what the store wrote and returns (ids and timestamps filled in by the store). Both are frozen:
evidence is never edited in place, a change is a new write with its own chained event.

Every datetime is timezone-aware UTC (naive values are taken to be UTC), so that hashes and
comparisons mean the same thing on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from prodcontrol.clock import ensure_utc

UtcDatetime = Annotated[datetime, AfterValidator(ensure_utc)]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
JsonDict = dict[str, Any]

VerdictValue = Literal["not_applicable", "pass", "warn", "fail", "error"]
RunStatus = Literal["running", "succeeded", "failed", "error"]
FindingStatus = Literal["open", "waived", "resolved", "closed"]
GateKind = Literal[
    "finding", "promotion", "retire", "review", "use_case", "tier_change", "incident"
]
GateStatus = Literal["pending", "approved", "rejected", "expired"]
DecisionValue = Literal["approve", "reject"]
Channel = Literal["cli", "slack", "web", "airflow", "system"]
ActionKind = Literal["rollback", "suspend", "promote", "retire", "accept_with_waiver", "accept"]
ActionStatus = Literal["requested", "applying", "applied", "failed", "skipped", "dead"]
EscalationStatus = Literal["active", "acknowledged", "resolved", "exhausted"]
RecipientKind = Literal["person", "channel"]
NotificationStatus = Literal["pending", "sent", "dead"]
AttemptOutcome = Literal["ok", "retry", "failed"]
DomainEventKind = Literal["gate_decided", "gate_expired"]
DomainEventStatus = Literal["pending", "applying", "done", "dead"]


def _finite_or_none(value: float | None) -> float | None:
    """NaN and infinities cannot be written as JSON, so they cannot enter the hash chain."""
    return value if value is None or math.isfinite(value) else None


MeasuredValue = Annotated[float | None, AfterValidator(_finite_or_none)]


class Record(BaseModel):
    """Base of every evidence record: unknown fields are errors and records never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- runs


class ControlRun(Record):
    """One execution of a tier's controls for one model version."""

    id: str
    model: str
    model_version: str
    tier: str
    trigger: str = Field(description="what started the run: cli, prefect, airflow, ...")
    flow_run_id: str | None = None
    idempotency_key: str | None = None
    status: RunStatus
    started_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    sample: JsonDict = Field(default_factory=dict)


class VerdictIn(Record):
    """A control's verdict as the engine decided it (``engine.verdicts.Decided`` plus ``kind``)."""

    control_id: str
    kind: str
    verdict: VerdictValue
    value: MeasuredValue = None
    warn: float | None = None
    fail: float | None = None
    direction: str
    reason: str
    details: JsonDict = Field(default_factory=dict)


class Verdict(VerdictIn):
    id: str
    run_id: str
    created_at: UtcDatetime


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (what artifact evidence records)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactIn(Record):
    """A file that explains a verdict (Evidently JSON/HTML); ``control_id`` ties it to one."""

    name: str
    media_type: str
    path: str
    sha256: Sha256Hex
    size_bytes: int = Field(ge=0)
    control_id: str | None = Field(None, description="the verdict in the same run it explains")

    @classmethod
    def from_file(
        cls, path: Path, *, name: str, media_type: str, control_id: str | None = None
    ) -> ArtifactIn:
        """Describe a file on disk, hashing it so a later reader can tell it was not changed."""
        return cls(
            name=name,
            media_type=media_type,
            path=str(path),
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
            control_id=control_id,
        )


class Artifact(Record):
    id: str
    run_id: str
    verdict_id: str | None = None
    name: str
    media_type: str
    path: str
    sha256: Sha256Hex
    size_bytes: int
    created_at: UtcDatetime


class FindingIn(Record):
    """A non-pass verdict that needs someone; ``control_id`` names its verdict in the same run."""

    control_id: str
    severity: str
    blocking: bool
    status: FindingStatus = "open"


class Finding(Record):
    id: str
    run_id: str
    verdict_id: str
    model: str
    model_version: str
    control_id: str
    verdict: VerdictValue
    severity: str
    blocking: bool
    status: FindingStatus
    opened_at: UtcDatetime
    closed_at: UtcDatetime | None = None


# --------------------------------------------------------------------------- gates


class GateIn(Record):
    """A decision point to open; who may decide is a right, resolved to people by the engine."""

    finding_id: str | None = None
    model: str
    model_version: str
    kind: GateKind
    right: str = Field(description="the decision right needed, e.g. escalation_outcome")
    required_approvals: int = Field(1, ge=1)
    requested_by: str | None = None
    due_at: UtcDatetime | None = None
    on_approve: str | None = None
    on_reject: str | None = None
    on_timeout: str | None = None
    flow_run_id: str | None = None
    context: JsonDict = Field(default_factory=dict)


class Gate(GateIn):
    id: str
    status: GateStatus
    opened_at: UtcDatetime
    decided_at: UtcDatetime | None = None
    version: int = Field(description="bumped on every change; decisions compare-and-set on it")


class DecisionIn(Record):
    person: str
    decision: DecisionValue
    channel: Channel
    reason: str = ""


class Decision(DecisionIn):
    id: str
    gate_id: str
    decided_at: UtcDatetime


# --------------------------------------------------------------------------- waivers, actions


class WaiverIn(Record):
    """An accepted finding, for a while: it expires and then the finding counts again."""

    finding_id: str
    model: str
    control_id: str
    reason: str
    approver: str
    expires_at: UtcDatetime


class Waiver(WaiverIn):
    id: str
    granted_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    revoked_by: str | None = None

    def active_at(self, when: datetime) -> bool:
        """Whether the waiver accepts its finding at ``when``."""
        when = ensure_utc(when)
        revoked = self.revoked_at is not None and self.revoked_at <= when
        return self.granted_at <= when < self.expires_at and not revoked


class ActionIn(Record):
    """What a decision did (or tried to do) in the model registry."""

    gate_id: str | None = None
    model: str
    model_version: str
    action: ActionKind
    params: JsonDict = Field(default_factory=dict)
    requested_by: str
    status: ActionStatus
    result: JsonDict = Field(default_factory=dict)
    applied_at: UtcDatetime | None = None


class Action(ActionIn):
    id: str
    created_at: UtcDatetime
    attempts: int = Field(0, description="times the registry was tried for a requested action")
    next_attempt_at: UtcDatetime | None = Field(
        None, description="when a requested action is tried next (the lease end while applying)"
    )


# --------------------------------------------------------------------------- domain events


class DomainEventIn(Record):
    """Something that happened in the loop that other parts react to (the outbox of the loop).

    Written in the transaction of the change it reports (a gate decided or expired), then
    handled from the store by whoever dispatches events: the deciding process right after the
    commit, the escalation ticker for anything left (a crash in between, Prefect unreachable).
    Handlers are idempotent: an event may be handled more than once, never lost.
    """

    kind: DomainEventKind
    key: str = Field(min_length=1, description="once-only: a second event with this key is refused")
    gate_id: str | None = None
    model: str | None = None
    payload: JsonDict = Field(default_factory=dict)


class DomainEvent(DomainEventIn):
    id: str
    status: DomainEventStatus
    attempts: int = 0
    next_attempt_at: UtcDatetime | None = Field(
        None, description="when it is handled next (the lease end while applying)"
    )
    created_at: UtcDatetime
    done_at: UtcDatetime | None = None
    result: JsonDict = Field(default_factory=dict)


# --------------------------------------------------------------------------- escalation, outbox


class EscalationIn(Record):
    finding_id: str | None = None
    gate_id: str | None = None
    model: str
    tier: str
    step: int = Field(0, ge=0)
    next_due_at: UtcDatetime | None = None


class Escalation(EscalationIn):
    id: str
    status: EscalationStatus
    started_at: UtcDatetime
    acknowledged_by: str | None = None
    acknowledged_at: UtcDatetime | None = None
    closed_at: UtcDatetime | None = None


class NotificationIn(Record):
    """A message to send, written to the outbox in the same transaction as its cause.

    ``idempotency_key`` makes it once-only: enqueueing the same key again is a no-op. In
    ``finish_run``, ``control_id`` links the message to the finding for that control.
    """

    idempotency_key: str = Field(min_length=1)
    recipient_kind: RecipientKind
    recipient: str
    payload: JsonDict = Field(default_factory=dict)
    escalation_id: str | None = None
    gate_id: str | None = None
    finding_id: str | None = None
    control_id: str | None = None
    next_attempt_at: UtcDatetime | None = Field(None, description="default: now")


class Notification(Record):
    id: str
    idempotency_key: str
    escalation_id: str | None = None
    gate_id: str | None = None
    finding_id: str | None = None
    recipient_kind: RecipientKind
    recipient: str
    payload: JsonDict
    status: NotificationStatus
    attempts: int
    next_attempt_at: UtcDatetime
    claimed_until: UtcDatetime | None = None
    last_error: str | None = None
    created_at: UtcDatetime
    sent_at: UtcDatetime | None = None
    provider_ref: JsonDict = Field(default_factory=dict)


class DeliveryAttemptIn(Record):
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    attempted_at: UtcDatetime | None = Field(None, description="default: now")


class DeliveryAttempt(Record):
    id: str
    notification_id: str
    attempted_at: UtcDatetime
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None


# --------------------------------------------------------------------------- the event log


class Event(Record):
    """One entry of the append-only log; ``hash`` covers ``prev_hash`` and everything else."""

    seq: int = Field(ge=1)
    at: UtcDatetime
    kind: str
    subject_type: str
    subject_id: str
    model: str | None = None
    payload: JsonDict
    prev_hash: Sha256Hex
    hash: Sha256Hex
    format: int = Field(2, description="canonical form of the hashed body: 1 legacy, 2 RFC 8785")


class HeadSignature(Record):
    """A signature over the chain head ``(seq, hash)`` made when that head was committed."""

    seq: int = Field(ge=0)
    hash: str
    key_id: str
    signature: str
    from_seq: int = Field(0, ge=0, description="the head the commit started from")


class ChainReport(Record):
    """The outcome of checking the event log: where it first goes wrong, if it does."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


class EvidenceReport(Record):
    """The chain check plus the check that each table row still equals its newest event."""

    ok: bool
    chain: ChainReport
    rows_checked: int
    mismatches: list[str] = Field(default_factory=list)
    start_seq: int = Field(0, description="the entry the log starts after (a recorded purge)")
    recorded_head: tuple[int, str] = Field((0, "0" * 64), description="the head row, as stored")
    head_signatures: list[HeadSignature] = Field(
        default_factory=list, description="the signed heads, read in the same snapshot"
    )
