"""Escalations and the notification outbox of the in-memory store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import StoreConflict, UsageError
from prodcontrol.evidence.port import (
    AttemptReport,
)
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
from prodcontrol.testing.store_base import (
    FINAL_NOTIFICATION,
    MemoryStoreBase,
    _model_in,
    _new_id,
    _stored,
    _Tx,
)


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
        record = Escalation(
            **escalation.model_dump(), id=_new_id(), status="active", started_at=tx.now
        )
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
            if row.status != "active" or step <= row.step:
                raise StoreConflict(
                    f"escalation {escalation_id} is {row.status} at step {row.step}; it cannot "
                    f"move to step {step}. Re-read it: someone acknowledged or advanced it first"
                )
            update: dict[str, Any] = {"step": step, "next_due_at": next_due_at}
            if next_due_at is None:
                update |= {"status": "exhausted", "closed_at": tx.now}
            advanced = _stored(row.model_copy(update=update))
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
            if row.acknowledged_at is not None or row.status == "resolved":
                return row
            acked = row.model_copy(
                update={
                    "status": "acknowledged",
                    "acknowledged_by": person,
                    "acknowledged_at": tx.now,
                    "next_due_at": None,
                }
            )
            return tx.update("escalation", acked, "acknowledged", acked.model)

    def resolve_escalation(self, escalation_id: str, reason: str) -> Escalation:
        with self._write() as tx:
            row: Escalation = self._get("escalation", "escalation", escalation_id)
            if row.status == "resolved":
                return row
            resolved = row.model_copy(
                update={"status": "resolved", "closed_at": tx.now, "next_due_at": None}
            )
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
        fields = message.model_dump(exclude={"control_id", "next_attempt_at"})
        for name, value in links.items():
            fields[name] = fields[name] or value
        if fields["finding_id"] is None and message.control_id is not None:
            if findings_by_control is None or message.control_id not in findings_by_control:
                raise UsageError(
                    f"notification {message.idempotency_key!r} names control "
                    f"{message.control_id!r}, but no finding for that control is written with it; "
                    "control_id links a message to a finding only inside finish_run, elsewhere "
                    "pass finding_id"
                )
            fields["finding_id"] = findings_by_control[message.control_id]
        record = Notification(
            **fields,
            id=_new_id(),
            status="pending",
            attempts=0,
            created_at=tx.now,
            next_attempt_at=message.next_attempt_at or tx.now,
        )
        return tx.insert("notification", record, "enqueued", model or _model_in(message.payload))

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
                    _model_in(n.payload),
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
        attempt = report.attempt
        record = DeliveryAttempt(
            **attempt.model_dump(exclude={"attempted_at"}),
            id=_new_id(),
            notification_id=row.id,
            attempted_at=attempt.attempted_at or tx.now,
        )
        model = _model_in(row.payload)
        tx.insert("delivery_attempt", record, "recorded", model)
        update: dict[str, Any] = {"attempts": row.attempts + 1, "claimed_until": None}
        if row.status not in FINAL_NOTIFICATION:
            update |= {
                "status": report.status,
                "last_error": attempt.error,
                "sent_at": tx.now if report.status == "sent" else row.sent_at,
                "next_attempt_at": ensure_utc(report.next_attempt_at or row.next_attempt_at),
                "provider_ref": dict(report.provider_ref or row.provider_ref),
            }
        changed = row.model_copy(update=update)
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
