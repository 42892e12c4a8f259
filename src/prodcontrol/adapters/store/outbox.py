"""Escalations and the notification outbox.

A message is written to the outbox in the same transaction as the thing that causes it (a
finding, a gate, an escalation step), so a crash between "decided to notify" and "sent" loses
nothing; senders then lease due rows, and the idempotency key keeps a message once-only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.tables import DeliveryAttemptRow, EscalationRow, NotificationRow
from prodcontrol.adapters.store.transaction import WriteTx, set_fields, to_record
from prodcontrol.clock import ensure_utc
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.port import AttemptReport, RecordNotFound
from prodcontrol.evidence.records import (
    DeliveryAttempt,
    DeliveryAttemptIn,
    Escalation,
    EscalationIn,
    EscalationStatus,
    Notification,
    NotificationIn,
    NotificationStatus,
)
from prodcontrol.evidence.store_rules import model_in


def add_notification(
    tx: WriteTx,
    message: NotificationIn,
    model: str | None,
    findings_by_control: Mapping[str, str] | None = None,
    **links: str | None,
) -> Notification:
    """Write one message to the outbox, or return the row already there under its key.

    ``links`` fill ``gate_id``/``escalation_id``/``finding_id`` that the caller could not know
    yet (the gate or escalation is created in the same transaction).
    """
    existing = tx.session.scalar(
        select(NotificationRow).where(NotificationRow.idempotency_key == message.idempotency_key)
    )
    if existing is not None:
        return to_record(existing, Notification)
    record = rules.new_notification(message, tx.now, findings_by_control, **links)
    model = model or model_in(message.payload)
    return tx.insert(NotificationRow, record, "notification", "enqueued", model)


def insert_escalation(
    tx: WriteTx, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
) -> Escalation:
    """Start a chain with its first messages (a second chain for the same lead finding is
    refused by ``uq_pc_escalations_finding_id``: StoreConflict)."""
    record = rules.new_escalation(escalation, tx.now)
    tx.insert(EscalationRow, record, "escalation", "started", record.model)
    for message in notifications:
        add_notification(
            tx,
            message,
            record.model,
            escalation_id=record.id,
            gate_id=record.gate_id,
            finding_id=record.finding_id,
        )
    return record


def _apply_attempt(tx: WriteTx, row: NotificationRow, report: AttemptReport) -> Notification:
    """Log one attempt on ``row`` and move the message on (see ``record_attempt``)."""
    record, changes = rules.delivery(to_record(row, Notification), report, tx.now)
    model = model_in(row.payload)
    tx.insert(DeliveryAttemptRow, record, "delivery_attempt", "recorded", model)
    set_fields(row, changes)
    tx.session.flush()
    updated = to_record(row, Notification)
    tx.log_record(updated, "notification", row.status, model)
    return updated


class OutboxMixin(StoreBase):
    """Escalations, the outbox, and delivery attempts."""

    # ------------------------------------------------------------------ escalations

    def start_escalation(
        self, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation:
        with self._write() as tx:
            return insert_escalation(tx, escalation, notifications)

    def advance_escalation(
        self,
        escalation_id: str,
        step: int,
        next_due_at: datetime | None,
        notifications: Sequence[NotificationIn] = (),
    ) -> Escalation:
        with self._write() as tx:
            row = self._get(tx.session, EscalationRow, "escalation", escalation_id)
            current = to_record(row, Escalation)
            set_fields(row, rules.advanced_escalation(current, step, next_due_at, tx.now))
            for message in notifications:
                add_notification(
                    tx,
                    message,
                    row.model,
                    escalation_id=row.id,
                    gate_id=row.gate_id,
                    finding_id=row.finding_id,
                )
            verb = "advanced" if next_due_at is not None else "exhausted"
            return self._log_escalation(tx, row, verb)

    def acknowledge_escalation(self, escalation_id: str, person: str) -> Escalation:
        with self._write() as tx:
            row = self._get(tx.session, EscalationRow, "escalation", escalation_id)
            current = to_record(row, Escalation)
            changes = rules.acknowledged_escalation(current, person, tx.now)
            if changes is None:
                return current
            set_fields(row, changes)
            return self._log_escalation(tx, row, "acknowledged")

    def resolve_escalation(self, escalation_id: str, reason: str) -> Escalation:
        with self._write() as tx:
            row = self._get(tx.session, EscalationRow, "escalation", escalation_id)
            current = to_record(row, Escalation)
            changes = rules.resolved_escalation(current, tx.now)
            if changes is None:
                return current
            set_fields(row, changes)
            return self._log_escalation(tx, row, "resolved", reason=reason)

    @staticmethod
    def _log_escalation(tx: WriteTx, row: EscalationRow, verb: str, **context: Any) -> Escalation:
        tx.session.flush()
        record = to_record(row, Escalation)
        tx.log_record(record, "escalation", verb, record.model, **context)
        return record

    def get_escalation(self, escalation_id: str) -> Escalation:
        return self._record(EscalationRow, Escalation, "escalation", escalation_id)

    def list_escalations(self, status: EscalationStatus | None = None) -> list[Escalation]:
        stmt = select(EscalationRow).order_by(EscalationRow.started_at, EscalationRow.id)
        if status is not None:
            stmt = stmt.where(EscalationRow.status == status)
        return self._records(stmt, Escalation)

    def escalations_for_findings(self, finding_ids: Sequence[str]) -> list[Escalation]:
        ids = list(dict.fromkeys(finding_ids))
        found: list[Escalation] = []
        for start in range(0, len(ids), 500):  # keep each IN list well under driver limits
            stmt = (
                select(EscalationRow)
                .where(EscalationRow.finding_id.in_(ids[start : start + 500]))
                .order_by(EscalationRow.started_at, EscalationRow.id)
            )
            found.extend(self._records(stmt, Escalation))
        return sorted(found, key=lambda e: (e.started_at, e.id))

    # ------------------------------------------------------------------ outbox

    def enqueue(self, notifications: Sequence[NotificationIn]) -> list[Notification]:
        with self._write() as tx:
            return [add_notification(tx, message, None) for message in notifications]

    def claim_due_notifications(
        self, now: datetime, limit: int, lease_seconds: float = 300.0
    ) -> list[Notification]:
        """Lease due messages: until the lease ends, no other sender is handed them.

        The lease is what makes this safe across transactions: SKIP LOCKED (PostgreSQL) only
        keeps two claimers apart while both are inside their transactions. A sender that dies
        mid-send lets the lease run out and the message becomes due again.
        """
        now = ensure_utc(now)
        until = now + timedelta(seconds=lease_seconds)
        due = (
            select(NotificationRow)
            .where(NotificationRow.status == "pending", NotificationRow.next_attempt_at <= now)
            .where(
                or_(NotificationRow.claimed_until.is_(None), NotificationRow.claimed_until <= now)
            )
            .order_by(NotificationRow.next_attempt_at, NotificationRow.created_at)
            .limit(limit)
        )
        # a sender polls often: look first without the write lock, which every writer (and
        # the chain head) queues for, so an idle poll never holds up a writer
        with self._read() as session:
            if limit < 1 or session.scalar(due.with_only_columns(NotificationRow.id)) is None:
                return []
        due = due.with_for_update(skip_locked=True)
        with self._write() as tx:
            claimed = []
            for row in tx.session.scalars(due).all():
                row.claimed_until = until
                tx.session.flush()
                record = to_record(row, Notification)
                tx.log_record(record, "notification", "claimed", model_in(record.payload))
                claimed.append(record)
            return claimed

    def record_attempt(
        self,
        notification_id: str,
        attempt: DeliveryAttemptIn,
        status: NotificationStatus,
        next_attempt_at: datetime | None = None,
        provider_ref: dict[str, Any] | None = None,
    ) -> Notification:
        """Log one delivery attempt and move the message on.

        A message already ``sent`` or ``dead`` keeps that status (a late report from a sender
        whose lease ran out cannot resurrect it), but the attempt is still recorded.
        """
        report = AttemptReport(notification_id, attempt, status, next_attempt_at, provider_ref)
        [updated] = self.record_attempts([report])
        return updated

    def record_attempts(self, attempts: Sequence[AttemptReport]) -> list[Notification]:
        """``record_attempt`` for a whole batch in one transaction: one lock and one commit.

        Every attempt still gets its own chained events (the attempt, then the message's new
        state), in the order given. An unknown id rolls the whole batch back.
        """
        if not attempts:
            return []
        ids = list(dict.fromkeys(report.notification_id for report in attempts))
        with self._write() as tx:
            rows: dict[str, NotificationRow] = {}
            for start in range(0, len(ids), 500):  # keep each IN list well under driver limits
                stmt = (
                    select(NotificationRow)
                    .where(NotificationRow.id.in_(ids[start : start + 500]))
                    .execution_options(populate_existing=True)
                )
                rows.update((row.id, row) for row in tx.session.scalars(stmt))
            missing = [i for i in ids if i not in rows]
            if missing:
                raise RecordNotFound("notification", missing[0])
            return [_apply_attempt(tx, rows[r.notification_id], r) for r in attempts]

    def list_notifications(self, status: NotificationStatus | None = None) -> list[Notification]:
        stmt = select(NotificationRow).order_by(NotificationRow.created_at, NotificationRow.id)
        if status is not None:
            stmt = stmt.where(NotificationRow.status == status)
        return self._records(stmt, Notification)

    def notifications_about(
        self, *, finding_id: str | None = None, gate_id: str | None = None
    ) -> list[Notification]:
        links = []
        if finding_id is not None:
            links.append(NotificationRow.finding_id == finding_id)
        if gate_id is not None:
            links.append(NotificationRow.gate_id == gate_id)
        if not links:
            return []
        stmt = (
            select(NotificationRow)
            .where(or_(*links))
            .order_by(NotificationRow.created_at, NotificationRow.id)
        )
        return self._records(stmt, Notification)

    def attempts_for(self, notification_id: str) -> list[DeliveryAttempt]:
        stmt = (
            select(DeliveryAttemptRow)
            .where(DeliveryAttemptRow.notification_id == notification_id)
            .order_by(DeliveryAttemptRow.attempted_at, DeliveryAttemptRow.id)
        )
        return self._records(stmt, DeliveryAttempt)
