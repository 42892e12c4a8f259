"""Escalations and the notification outbox of the in-memory store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence import store_rules as rules
from prodcontrol.evidence.port import AttemptReport
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
from prodcontrol.testing.store_base import MemoryStoreBase, _stored, _Tx


class OutboxPart(MemoryStoreBase):
    """Escalations, the outbox, and delivery attempts."""

    # ------------------------------------------------------------------ escalations

    def _insert_escalation(
        self, tx: _Tx, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation:
        if escalation.finding_id is not None and any(
            e.finding_id == escalation.finding_id for e in self._rows["escalation"].values()
        ):
            raise StoreConflict(
                "the evidence store refused the write: uq_pc_escalations_finding_id (finding "
                f"{escalation.finding_id} has a chain)"
            )
        record = rules.new_escalation(escalation, tx.now)
        record = tx.insert("escalation", record, "started", record.model)
        for message in notifications:
            self._add_notification(
                tx,
                message,
                record.model,
                escalation_id=record.id,
                gate_id=record.gate_id,
                finding_id=record.finding_id,
            )
        return record

    def start_escalation(
        self, escalation: EscalationIn, notifications: Sequence[NotificationIn] = ()
    ) -> Escalation:
        with self._write() as tx:
            return self._insert_escalation(tx, escalation, notifications)

    def advance_escalation(
        self,
        escalation_id: str,
        step: int,
        next_due_at: datetime | None,
        notifications: Sequence[NotificationIn] = (),
    ) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            changes = rules.advanced_escalation(row, step, next_due_at, tx.now)
            advanced = _stored(row.model_copy(update=changes))
            self._rows["escalation"][row.id] = advanced
            for message in notifications:
                self._add_notification(
                    tx,
                    message,
                    row.model,
                    escalation_id=row.id,
                    gate_id=row.gate_id,
                    finding_id=row.finding_id,
                )
            verb = "advanced" if next_due_at is not None else "exhausted"
            return tx.update("escalation", advanced, verb, row.model)

    def acknowledge_escalation(self, escalation_id: str, person: str) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            changes = rules.acknowledged_escalation(row, person, tx.now)
            if changes is None:
                return row
            acked = row.model_copy(update=changes)
            return tx.update("escalation", acked, "acknowledged", acked.model)

    def resolve_escalation(self, escalation_id: str, reason: str) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            changes = rules.resolved_escalation(row, tx.now)
            if changes is None:
                return row
            resolved = row.model_copy(update=changes)
            return tx.update("escalation", resolved, "resolved", resolved.model, reason=reason)

    def get_escalation(self, escalation_id: str) -> Escalation:
        with self._lock:
            escalation: Escalation = self._get("escalation", "escalation", escalation_id)
            return escalation

    def list_escalations(self, status: EscalationStatus | None = None) -> list[Escalation]:
        escalations: list[Escalation] = self._all("escalation")
        return sorted(
            (e for e in escalations if status is None or e.status == status),
            key=lambda e: (e.started_at, e.id),
        )

    def escalations_for_findings(self, finding_ids: Sequence[str]) -> list[Escalation]:
        wanted = set(finding_ids)
        escalations: list[Escalation] = self._all("escalation")
        return sorted(
            (e for e in escalations if e.finding_id in wanted), key=lambda e: (e.started_at, e.id)
        )

    # ------------------------------------------------------------------ outbox

    def _add_notification(
        self,
        tx: _Tx,
        message: NotificationIn,
        model: str | None,
        findings_by_control: Mapping[str, str] | None = None,
        **links: str | None,
    ) -> Notification:
        existing: Notification | None = next(
            (
                n
                for n in self._rows["notification"].values()
                if n.idempotency_key == message.idempotency_key
            ),
            None,
        )
        if existing is not None:
            return existing
        record = rules.new_notification(message, tx.now, findings_by_control, **links)
        return tx.insert("notification", record, "enqueued", model or model_in(message.payload))

    def enqueue(self, notifications: Sequence[NotificationIn]) -> list[Notification]:
        with self._write() as tx:
            return [self._add_notification(tx, message, None) for message in notifications]

    def claim_due_notifications(
        self, now: datetime, limit: int, lease_seconds: float = 300.0
    ) -> list[Notification]:
        """Lease due messages: until the lease ends, no other sender is handed them."""
        when = ensure_utc(now)
        until = when + timedelta(seconds=lease_seconds)
        if limit < 1:
            return []
        with self._write() as tx:
            notes: list[Notification] = self._all("notification")
            due = sorted(
                (
                    n
                    for n in notes
                    if n.status == "pending"
                    and n.next_attempt_at <= when
                    and (n.claimed_until is None or n.claimed_until <= when)
                ),
                key=lambda n: (n.next_attempt_at, n.created_at),
            )[:limit]
            return [
                tx.update(
                    "notification",
                    n.model_copy(update={"claimed_until": until}),
                    "claimed",
                    model_in(n.payload),
                )
                for n in due
            ]

    def record_attempt(
        self,
        notification_id: str,
        attempt: DeliveryAttemptIn,
        status: NotificationStatus,
        next_attempt_at: datetime | None = None,
        provider_ref: dict[str, Any] | None = None,
    ) -> Notification:
        """Log one delivery attempt and move the message on (a final message stays final)."""
        report = AttemptReport(notification_id, attempt, status, next_attempt_at, provider_ref)
        [updated] = self.record_attempts([report])
        return updated

    def record_attempts(self, attempts: Sequence[AttemptReport]) -> list[Notification]:
        if not attempts:
            return []
        with self._write() as tx:
            for report in attempts:
                self._get("notification", "notification", report.notification_id)
            return [self._apply_attempt(tx, report) for report in attempts]

    def _apply_attempt(self, tx: _Tx, report: AttemptReport) -> Notification:
        row: Notification = self._rows["notification"][report.notification_id]
        record, changes = rules.delivery(row, report, tx.now)
        model = model_in(row.payload)
        tx.insert("delivery_attempt", record, "recorded", model)
        changed = row.model_copy(update=changes)
        return tx.update("notification", changed, changed.status, model)

    def list_notifications(self, status: NotificationStatus | None = None) -> list[Notification]:
        notes: list[Notification] = self._all("notification")
        return sorted(
            (n for n in notes if status is None or n.status == status),
            key=lambda n: (n.created_at, n.id),
        )

    def attempts_for(self, notification_id: str) -> list[DeliveryAttempt]:
        attempts: list[DeliveryAttempt] = self._all("delivery_attempt")
        return sorted(
            (a for a in attempts if a.notification_id == notification_id),
            key=lambda a: (a.attempted_at, a.id),
        )

    def notifications_about(
        self, *, finding_id: str | None = None, gate_id: str | None = None
    ) -> list[Notification]:
        if finding_id is None and gate_id is None:
            return []
        notes: list[Notification] = self._all("notification")
        return sorted(
            (
                n
                for n in notes
                if (finding_id is not None and n.finding_id == finding_id)
                or (gate_id is not None and n.gate_id == gate_id)
            ),
            key=lambda n: (n.created_at, n.id),
        )
