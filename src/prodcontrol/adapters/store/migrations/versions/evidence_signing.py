"""Signed evidence: each entry's canonical format, and the signatures of committed chain heads.

- ``pc_events.format``: the canonical JSON form its hash was computed over. Entries written
  before this revision keep format 1 (Python's sorted ``json.dumps``); new entries are format 2
  (RFC 8785). Formats only move forward along the chain, which verify checks.
- ``pc_head_signatures``: one Ed25519 signature per committed head ``(seq, hash)``, by the key
  in force (``key_id``), and the head the commit started from (``from_seq``: consecutive
  signatures must meet, so entries slipped in between two commits are found); written only
  when an ``evidence_signing_key`` is configured.
- ``ix_pc_events_kind_seq``: the newest entry of a kind (the last anchoring) without a scan.

Revision ID: evidence_signing
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "evidence_signing"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "pc_events",
        sa.Column("format", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
    )
    op.create_index("ix_pc_events_kind_seq", "pc_events", ["kind", "seq"])
    t = "pc_head_signatures"
    op.create_table(
        t,
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=f"pk_{t}"),
    )


def downgrade() -> None:
    op.drop_table("pc_head_signatures")
    op.drop_index("ix_pc_events_kind_seq", table_name="pc_events")
    with op.batch_alter_table("pc_events") as batch:
        batch.drop_column("format")
