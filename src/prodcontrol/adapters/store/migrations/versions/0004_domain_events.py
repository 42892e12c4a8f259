"""The loop's outbox of domain events: a gate decided or expired, written in that transaction.

- ``pc_domain_events``: one row per event (``key`` once-only), handled from the store by the
  deciding process right after its commit and by the escalation ticker for whatever is left
  (stopping the gate's escalations, updating its Slack messages, resuming the Prefect flow run
  waiting on it), leased while handled, retried with backoff, dead after a limit. It replaces
  the in-process gate listeners that modules registered when imported.

Revision ID: 0004
Revises: evidence_signing
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "evidence_signing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = "pc_domain_events"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("gate_id", sa.String(36), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["gate_id"], ["pc_gates.id"], name=f"fk_{T}_gate_id_pc_gates", ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{T}"),
        sa.UniqueConstraint("key", name=f"uq_{T}_key"),
    )
    op.create_index(f"ix_{T}_status_next_attempt_at", T, ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index(f"ix_{T}_status_next_attempt_at", table_name=T)
    op.drop_table(T)
