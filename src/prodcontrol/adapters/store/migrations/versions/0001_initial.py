"""The evidence store: runs, verdicts, artifacts, findings, gates, decisions, waivers, actions,
escalations, the notification outbox with its delivery attempts, and the hash-chained event log.

Hand-written and frozen: it does not import the current table classes, so later changes to
them cannot change what this revision does. Constraint names follow the naming convention in
``tables.py`` so later migrations can refer to them on every backend.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def _id(name: str = "id", nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(36), nullable=nullable)


def _text(name: str, length: int = 200, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length), nullable=nullable)


def _short(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.String(40), nullable=nullable)


def _long(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.JSON(), nullable=False)


def _int(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete="RESTRICT"
    )


def _table(name: str, *items: sa.Column[Any] | sa.Constraint, pk: str = "id") -> None:
    op.create_table(name, *items, sa.PrimaryKeyConstraint(pk, name=f"pk_{name}"))


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def _unique(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=f"uq_{table}_{'_'.join(columns)}")


def _runs() -> None:
    t = "pc_runs"
    _table(
        t,
        _id(),
        _text("model"),
        _text("model_version"),
        _short("tier"),
        _short("trigger"),
        _text("flow_run_id", nullable=True),
        _text("idempotency_key", nullable=True),
        _short("status"),
        _when("started_at"),
        _when("finished_at", nullable=True),
        _json("sample"),
        _unique(t, "idempotency_key"),
    )
    _index(t, "model")
    _index(t, "started_at")

    t = "pc_verdicts"
    _table(
        t,
        _id(),
        _id("run_id"),
        _text("control_id"),
        _short("kind"),
        _short("verdict"),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("warn", sa.Float(), nullable=True),
        sa.Column("fail", sa.Float(), nullable=True),
        _short("direction"),
        _long("reason"),
        _json("details"),
        _when("created_at"),
        _fk(t, "run_id", "pc_runs"),
        _unique(t, "run_id", "control_id"),
    )

    t = "pc_artifacts"
    _table(
        t,
        _id(),
        _id("run_id"),
        _id("verdict_id", nullable=True),
        _text("name"),
        _text("media_type"),
        _long("path"),
        _text("sha256", 64),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        _when("created_at"),
        _fk(t, "run_id", "pc_runs"),
        _fk(t, "verdict_id", "pc_verdicts"),
    )
    _index(t, "run_id")

    t = "pc_findings"
    _table(
        t,
        _id(),
        _id("run_id"),
        _id("verdict_id"),
        _text("model"),
        _text("model_version"),
        _text("control_id"),
        _short("verdict"),
        _short("severity"),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        _short("status"),
        _when("opened_at"),
        _when("closed_at", nullable=True),
        _fk(t, "run_id", "pc_runs"),
        _fk(t, "verdict_id", "pc_verdicts"),
    )
    _index(t, "model")
    _index(t, "run_id")
    _index(t, "status")


def _gates() -> None:
    t = "pc_gates"
    _table(
        t,
        _id(),
        _id("finding_id", nullable=True),
        _text("model"),
        _text("model_version"),
        _short("kind"),
        _short("status"),
        _short("right"),
        _int("required_approvals"),
        _text("requested_by", nullable=True),
        _when("opened_at"),
        _when("due_at", nullable=True),
        _when("decided_at", nullable=True),
        _short("on_approve", nullable=True),
        _short("on_reject", nullable=True),
        _short("on_timeout", nullable=True),
        _text("flow_run_id", nullable=True),
        _json("context"),
        _int("version"),
        _fk(t, "finding_id", "pc_findings"),
    )
    _index(t, "model")
    _index(t, "status")

    t = "pc_decisions"
    _table(
        t,
        _id(),
        _id("gate_id"),
        _text("person"),
        _short("decision"),
        _short("channel"),
        _long("reason"),
        _when("decided_at"),
        _fk(t, "gate_id", "pc_gates"),
        _unique(t, "gate_id", "person"),
    )

    t = "pc_waivers"
    _table(
        t,
        _id(),
        _id("finding_id"),
        _text("model"),
        _text("control_id"),
        _long("reason"),
        _text("approver"),
        _when("granted_at"),
        _when("expires_at"),
        _when("revoked_at", nullable=True),
        _text("revoked_by", nullable=True),
        _fk(t, "finding_id", "pc_findings"),
    )
    _index(t, "finding_id")
    _index(t, "model")

    t = "pc_actions"
    _table(
        t,
        _id(),
        _id("gate_id", nullable=True),
        _text("model"),
        _text("model_version"),
        _short("action"),
        _json("params"),
        _text("requested_by"),
        _short("status"),
        _json("result"),
        _when("applied_at", nullable=True),
        _when("created_at"),
        _fk(t, "gate_id", "pc_gates"),
    )
    _index(t, "model")


def _escalations_and_outbox() -> None:
    t = "pc_escalations"
    _table(
        t,
        _id(),
        _id("finding_id", nullable=True),
        _id("gate_id", nullable=True),
        _text("model"),
        _short("tier"),
        _short("status"),
        _int("step"),
        _when("started_at"),
        _when("next_due_at", nullable=True),
        _text("acknowledged_by", nullable=True),
        _when("acknowledged_at", nullable=True),
        _when("closed_at", nullable=True),
        _fk(t, "finding_id", "pc_findings"),
        _fk(t, "gate_id", "pc_gates"),
    )
    _index(t, "status")

    t = "pc_notifications"
    _table(
        t,
        _id(),
        _text("idempotency_key", 300),
        _id("escalation_id", nullable=True),
        _id("gate_id", nullable=True),
        _id("finding_id", nullable=True),
        _short("recipient_kind"),
        _text("recipient"),
        _json("payload"),
        _short("status"),
        _int("attempts"),
        _when("next_attempt_at"),
        _when("claimed_until", nullable=True),
        _long("last_error", nullable=True),
        _when("created_at"),
        _when("sent_at", nullable=True),
        _json("provider_ref"),
        _fk(t, "escalation_id", "pc_escalations"),
        _fk(t, "gate_id", "pc_gates"),
        _fk(t, "finding_id", "pc_findings"),
        _unique(t, "idempotency_key"),
    )
    _index(t, "status", "next_attempt_at")

    t = "pc_delivery_attempts"
    _table(
        t,
        _id(),
        _id("notification_id"),
        _when("attempted_at"),
        _short("outcome"),
        _int("status_code", nullable=True),
        _long("error", nullable=True),
        _fk(t, "notification_id", "pc_notifications"),
    )
    _index(t, "notification_id")


def _event_log() -> None:
    t = "pc_events"
    _table(
        t,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        _when("at"),
        _text("kind", 80),
        _short("subject_type"),
        _text("subject_id"),
        _text("model", nullable=True),
        _long("payload"),
        _text("prev_hash", 64),
        _text("hash", 64),
        _unique(t, "hash"),
        pk="seq",
    )
    _index(t, "model")
    _index(t, "subject_type", "subject_id")

    t = "pc_chain_head"
    _table(
        t,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _text("hash", 64),
        sa.CheckConstraint("id = 1", name=f"ck_{t}_single_row"),
    )
    head = sa.table(t, sa.column("id"), sa.column("seq"), sa.column("hash"))
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])


def upgrade() -> None:
    _runs()
    _gates()
    _escalations_and_outbox()
    _event_log()


def downgrade() -> None:
    for table in (
        "pc_chain_head",
        "pc_events",
        "pc_delivery_attempts",
        "pc_notifications",
        "pc_escalations",
        "pc_actions",
        "pc_waivers",
        "pc_decisions",
        "pc_gates",
        "pc_findings",
        "pc_artifacts",
        "pc_verdicts",
        "pc_runs",
    ):
        op.drop_table(table)
