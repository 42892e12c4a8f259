"""The control loop's promises as keys: one pending finding gate per model version, one chain
per lead finding, and the queue columns of version-bound actions.

- ``uq_pc_gates_pending_finding``: at most one *pending* finding gate per model version (a
  partial unique index, on SQLite and PostgreSQL); a later run joins it, never opens another.
- ``uq_pc_escalations_finding_id``: one escalation chain per lead finding (a gate's worst
  finding, else a run's), so two tickers or a run and a sweep cannot start two.
- ``pc_actions.attempts`` / ``pc_actions.next_attempt_at``: a requested action is applied by the
  ticker, retried with backoff while the registry is unreachable, dead-lettered after the
  tier's limit. One decision per person per gate was already ``uq_pc_decisions_gate_id_person``.

Revision ID: 0003
Revises: identity_tokens_replay
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "identity_tokens_replay"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING_FINDING = "kind = 'finding' AND status = 'pending'"


def upgrade() -> None:
    op.create_index(
        "uq_pc_gates_pending_finding",
        "pc_gates",
        ["model", "model_version"],
        unique=True,
        sqlite_where=sa.text(PENDING_FINDING),
        postgresql_where=sa.text(PENDING_FINDING),
    )
    op.create_index("uq_pc_escalations_finding_id", "pc_escalations", ["finding_id"], unique=True)
    with op.batch_alter_table("pc_actions") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pc_actions") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("attempts")
    op.drop_index("uq_pc_escalations_finding_id", table_name="pc_escalations")
    op.drop_index("uq_pc_gates_pending_finding", table_name="pc_gates")
