"""Identity: personal tokens (hashed), the shared replay cache of signed requests, and the
credential each gate decision came with.

Revision ID: identity_tokens_replay
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "identity_tokens_replay"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    t = "pc_personal_tokens"
    op.create_table(
        t,
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        _when("issued_at"),
        _when("expires_at"),
        sa.Column("issued_by", sa.String(200), nullable=False),
        _when("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
    )
    op.create_index(f"ix_{t}_person", t, ["person"])
    t = "pc_seen_requests"
    op.create_table(
        t,
        sa.Column("key", sa.String(64), nullable=False),
        _when("seen_at"),
        sa.PrimaryKeyConstraint("key", name=f"pk_{t}"),
    )
    op.create_index(f"ix_{t}_seen_at", t, ["seen_at"])
    t = "pc_decision_credentials"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("gate_id", sa.String(36), nullable=False),
        sa.Column("person", sa.String(200), nullable=False),
        sa.Column("credential", sa.String(200), nullable=False),
        _when("at"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("gate_id", "person", name=f"uq_{t}_gate_id_person"),
    )
    op.create_index(f"ix_{t}_gate_id", t, ["gate_id"])


def downgrade() -> None:
    op.drop_table("pc_decision_credentials")
    op.drop_table("pc_seen_requests")
    op.drop_table("pc_personal_tokens")
