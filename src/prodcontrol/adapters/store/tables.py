"""The evidence tables, SQLAlchemy 2 declarative. Column names equal the record field names.

Tables carry a ``pc_`` prefix so the evidence can share a PostgreSQL database with MLflow or
Prefect (both have tables named ``runs``/``events``/``artifact``) without a clash. The schema
itself is created by the hand-written Alembic migrations next to this file, and a test checks
that they and these classes agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from prodcontrol.clock import ensure_utc

ID = String(36)
NAME = String(200)
SHORT = String(40)
HASH = String(64)

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in and out on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so the value is stored as naive
    UTC text (which still sorts correctly) and made aware again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = ensure_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, ondelete="RESTRICT")


class RunRow(Base):
    __tablename__ = "pc_runs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    model: Mapped[str] = mapped_column(NAME, index=True)
    model_version: Mapped[str] = mapped_column(NAME)
    tier: Mapped[str] = mapped_column(SHORT)
    trigger: Mapped[str] = mapped_column(SHORT)
    flow_run_id: Mapped[str | None] = mapped_column(NAME)
    idempotency_key: Mapped[str | None] = mapped_column(NAME, unique=True)
    status: Mapped[str] = mapped_column(SHORT)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    sample: Mapped[dict[str, Any]]


class VerdictRow(Base):
    __tablename__ = "pc_verdicts"
    __table_args__ = (UniqueConstraint("run_id", "control_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(_fk("pc_runs.id"))
    control_id: Mapped[str] = mapped_column(NAME)
    kind: Mapped[str] = mapped_column(SHORT)
    verdict: Mapped[str] = mapped_column(SHORT)
    value: Mapped[float | None] = mapped_column(Float)
    warn: Mapped[float | None] = mapped_column(Float)
    fail: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(SHORT)
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class ArtifactRow(Base):
    __tablename__ = "pc_artifacts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(_fk("pc_runs.id"), index=True)
    verdict_id: Mapped[str | None] = mapped_column(_fk("pc_verdicts.id"))
    name: Mapped[str] = mapped_column(NAME)
    media_type: Mapped[str] = mapped_column(NAME)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(HASH)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime]


class FindingRow(Base):
    __tablename__ = "pc_findings"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    run_id: Mapped[str] = mapped_column(_fk("pc_runs.id"), index=True)
    verdict_id: Mapped[str] = mapped_column(_fk("pc_verdicts.id"))
    model: Mapped[str] = mapped_column(NAME, index=True)
    model_version: Mapped[str] = mapped_column(NAME)
    control_id: Mapped[str] = mapped_column(NAME)
    verdict: Mapped[str] = mapped_column(SHORT)
    severity: Mapped[str] = mapped_column(SHORT)
    blocking: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(SHORT, index=True)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]


PENDING_FINDING = "kind = 'finding' AND status = 'pending'"


class GateRow(Base):
    __tablename__ = "pc_gates"
    __table_args__ = (
        # one pending finding gate per model version: a later run joins it (DESIGN §4)
        Index(
            "uq_pc_gates_pending_finding",
            "model",
            "model_version",
            unique=True,
            sqlite_where=text(PENDING_FINDING),
            postgresql_where=text(PENDING_FINDING),
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    finding_id: Mapped[str | None] = mapped_column(_fk("pc_findings.id"))
    model: Mapped[str] = mapped_column(NAME, index=True)
    model_version: Mapped[str] = mapped_column(NAME)
    kind: Mapped[str] = mapped_column(SHORT)
    status: Mapped[str] = mapped_column(SHORT, index=True)
    right: Mapped[str] = mapped_column(SHORT)
    required_approvals: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str | None] = mapped_column(NAME)
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    on_approve: Mapped[str | None] = mapped_column(SHORT)
    on_reject: Mapped[str | None] = mapped_column(SHORT)
    on_timeout: Mapped[str | None] = mapped_column(SHORT)
    flow_run_id: Mapped[str | None] = mapped_column(NAME)
    context: Mapped[dict[str, Any]]
    version: Mapped[int] = mapped_column(Integer)


class DecisionRow(Base):
    __tablename__ = "pc_decisions"
    __table_args__ = (UniqueConstraint("gate_id", "person"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    gate_id: Mapped[str] = mapped_column(_fk("pc_gates.id"))
    person: Mapped[str] = mapped_column(NAME)
    decision: Mapped[str] = mapped_column(SHORT)
    channel: Mapped[str] = mapped_column(SHORT)
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime]


class WaiverRow(Base):
    __tablename__ = "pc_waivers"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    finding_id: Mapped[str] = mapped_column(_fk("pc_findings.id"), index=True)
    model: Mapped[str] = mapped_column(NAME, index=True)
    control_id: Mapped[str] = mapped_column(NAME)
    reason: Mapped[str] = mapped_column(Text)
    approver: Mapped[str] = mapped_column(NAME)
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(NAME)


class ActionRow(Base):
    __tablename__ = "pc_actions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    gate_id: Mapped[str | None] = mapped_column(_fk("pc_gates.id"))
    model: Mapped[str] = mapped_column(NAME, index=True)
    model_version: Mapped[str] = mapped_column(NAME)
    action: Mapped[str] = mapped_column(SHORT)
    params: Mapped[dict[str, Any]]
    requested_by: Mapped[str] = mapped_column(NAME)
    status: Mapped[str] = mapped_column(SHORT)
    result: Mapped[dict[str, Any]]
    applied_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]


class DomainEventRow(Base):
    """The loop's outbox of domain events (gate decided, gate expired), see DomainEventIn."""

    __tablename__ = "pc_domain_events"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(SHORT)
    gate_id: Mapped[str | None] = mapped_column(_fk("pc_gates.id"))
    model: Mapped[str | None] = mapped_column(NAME)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(SHORT)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    result: Mapped[dict[str, Any]]


class EscalationRow(Base):
    __tablename__ = "pc_escalations"
    __table_args__ = (Index("uq_pc_escalations_finding_id", "finding_id", unique=True),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    finding_id: Mapped[str | None] = mapped_column(_fk("pc_findings.id"))
    gate_id: Mapped[str | None] = mapped_column(_fk("pc_gates.id"))
    model: Mapped[str] = mapped_column(NAME)
    tier: Mapped[str] = mapped_column(SHORT)
    status: Mapped[str] = mapped_column(SHORT, index=True)
    step: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    next_due_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(NAME)
    acknowledged_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class NotificationRow(Base):
    __tablename__ = "pc_notifications"
    __table_args__ = (Index(None, "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    escalation_id: Mapped[str | None] = mapped_column(_fk("pc_escalations.id"))
    gate_id: Mapped[str | None] = mapped_column(_fk("pc_gates.id"))
    finding_id: Mapped[str | None] = mapped_column(_fk("pc_findings.id"))
    recipient_kind: Mapped[str] = mapped_column(SHORT)
    recipient: Mapped[str] = mapped_column(NAME)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(SHORT)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    provider_ref: Mapped[dict[str, Any]]


class DeliveryAttemptRow(Base):
    __tablename__ = "pc_delivery_attempts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    notification_id: Mapped[str] = mapped_column(_fk("pc_notifications.id"), index=True)
    attempted_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(SHORT)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class EventRow(Base):
    """The log. ``payload`` is the canonical JSON text that was hashed, stored byte for byte."""

    __tablename__ = "pc_events"
    __table_args__ = (Index(None, "subject_type", "subject_id"), Index(None, "kind", "seq"))

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str] = mapped_column(SHORT)
    subject_id: Mapped[str] = mapped_column(NAME)
    model: Mapped[str | None] = mapped_column(NAME, index=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(HASH)
    hash: Mapped[str] = mapped_column(HASH, unique=True)
    format: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))


class HeadSignatureRow(Base):
    """A signature over the head ``(seq, hash)`` a commit left, by the key in force then."""

    __tablename__ = "pc_head_signatures"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(HASH)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    from_seq: Mapped[int] = mapped_column(BigInteger)
    signed_at: Mapped[datetime]


class ChainHeadRow(Base):
    """One row: the newest ``(seq, hash)``. Writers lock it, which orders their appends."""

    __tablename__ = "pc_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(HASH)


HEAD_ID = 1


# --------------------------------------------------------------------------- identity (not chained)


class PersonalTokenRow(Base):
    """A personal token's salted scrypt hash; issuing and revoking are logged as events."""

    __tablename__ = "pc_personal_tokens"

    id: Mapped[str] = mapped_column(SHORT, primary_key=True)
    person: Mapped[str] = mapped_column(NAME, index=True)
    salt: Mapped[str] = mapped_column(HASH)
    hash: Mapped[str] = mapped_column(HASH)
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    issued_by: Mapped[str] = mapped_column(NAME)
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(NAME)


class SeenRequestRow(Base):
    """Signed requests already accepted (Slack replay cache), shared by every replica."""

    __tablename__ = "pc_seen_requests"

    key: Mapped[str] = mapped_column(HASH, primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class DecisionCredentialRow(Base):
    """Which credential each decision on a gate came with: two people need two credentials."""

    __tablename__ = "pc_decision_credentials"
    __table_args__ = (UniqueConstraint("gate_id", "person"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    gate_id: Mapped[str] = mapped_column(ID, index=True)
    person: Mapped[str] = mapped_column(NAME)
    credential: Mapped[str] = mapped_column(NAME)
    at: Mapped[datetime]
