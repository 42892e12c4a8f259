"""The loop's domain events (gate decided, gate expired): queued in the transaction of the change
they report, leased by dispatchers, settled once handled (see DomainEventIn)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.outbox import new_id
from prodcontrol.adapters.store.tables import DomainEventRow
from prodcontrol.adapters.store.transaction import WriteTx, to_record
from prodcontrol.clock import ensure_utc
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence.records import DomainEvent, DomainEventIn, DomainEventStatus


def insert_events(tx: WriteTx, events: Sequence[DomainEventIn]) -> list[DomainEvent]:
    """Queue ``events`` in the caller's transaction (a key already used: StoreConflict)."""
    written = []
    for event in events:
        record = DomainEvent(
            **event.model_dump(),
            id=new_id(),
            status="pending",
            created_at=tx.now,
            next_attempt_at=tx.now,
        )
        written.append(tx.insert(DomainEventRow, record, "domain_event", "queued", record.model))
    return written


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
            claimed = []
            for row in tx.session.scalars(stmt).all():
                row.status = "applying"
                row.next_attempt_at = when + timedelta(seconds=lease_seconds)
                tx.session.flush()
                record = to_record(row, DomainEvent)
                tx.log_record(record, "domain_event", "applying", record.model)
                claimed.append(record)
            return claimed

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
            if row.status != "applying":
                raise StoreConflict(
                    f"domain event {event_id} is {row.status}, not being handled; it was not "
                    f"set {status} (another dispatcher's lease ran out and it took over)"
                )
            row.attempts += 1
            row.result = dict(result)
            if status == "pending":
                row.status, row.next_attempt_at = "pending", ensure_utc(retry_at or tx.now)
            else:
                row.status, row.next_attempt_at = status, None
                row.done_at = tx.now if status == "done" else None
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
