"""The loop's domain events (gate decided, gate expired): queued in the transaction of the change
they report, leased by dispatchers, settled once handled (see DomainEventIn)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.tables import DomainEventRow
from prodcontrol.adapters.store.transaction import WriteTx, lease, set_fields, to_record
from prodcontrol.clock import ensure_utc
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.records import DomainEvent, DomainEventIn, DomainEventStatus


def insert_events(tx: WriteTx, events: Sequence[DomainEventIn]) -> list[DomainEvent]:
    """Queue ``events`` in the caller's transaction (a key already used: StoreConflict)."""
    records = [rules.new_domain_event(event, tx.now) for event in events]
    return [tx.insert(DomainEventRow, r, "domain_event", "queued", r.model) for r in records]


class DomainEventsMixin(StoreBase):
    """Claim, settle and list domain events."""

    def claim_domain_events(
        self,
        now: datetime,
        *,
        gate_id: str | None = None,
        limit: int = 100,
        lease_seconds: float = 60.0,
    ) -> list[DomainEvent]:
        when = ensure_utc(now)
        stmt = (
            select(DomainEventRow)
            .where(
                DomainEventRow.status.in_(("pending", "applying")),
                DomainEventRow.next_attempt_at <= when,
            )
            .order_by(DomainEventRow.created_at, DomainEventRow.id)
            .limit(limit)
        )
        if gate_id is not None:
            stmt = stmt.where(DomainEventRow.gate_id == gate_id)
        # dispatchers poll every tick: look without the write lock first
        with self._read() as session:
            if limit < 1 or session.scalar(stmt.with_only_columns(DomainEventRow.id)) is None:
                return []
        with self._write() as tx:
            until = when + timedelta(seconds=lease_seconds)
            return lease(tx, stmt, DomainEvent, "domain_event", until)

    def settle_domain_event(
        self,
        event_id: str,
        status: DomainEventStatus,
        result: dict[str, Any],
        *,
        retry_at: datetime | None = None,
    ) -> DomainEvent:
        with self._write() as tx:
            row = self._get(tx.session, DomainEventRow, "domain event", event_id)
            current = to_record(row, DomainEvent)
            set_fields(
                row, rules.settled_domain_event(current, status, result, tx.now, retry_at=retry_at)
            )
            tx.session.flush()
            record = to_record(row, DomainEvent)
            tx.log_record(record, "domain_event", status, record.model)
            return record

    def list_domain_events(
        self, status: DomainEventStatus | None = None, gate_id: str | None = None
    ) -> list[DomainEvent]:
        stmt = select(DomainEventRow).order_by(DomainEventRow.created_at, DomainEventRow.id)
        if status is not None:
            stmt = stmt.where(DomainEventRow.status == status)
        if gate_id is not None:
            stmt = stmt.where(DomainEventRow.gate_id == gate_id)
        return self._records(stmt, DomainEvent)
