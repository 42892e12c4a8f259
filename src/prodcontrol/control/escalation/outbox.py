"""The outbox sender: lease due messages, deliver them, record every attempt and its answer.

Once-only delivery across crashes. A sender that dies between "Slack accepted it" and "marked
sent" leaves the row leased; when the lease runs out another sender claims it again. Such a row
is recognisable at claim time: it already had a failed attempt (``attempts > 0``) or it has been
due for at least a lease (``now - next_attempt_at >= lease``: a row is first claimed once due, so
a row claimed before is due for at least one lease when claimed again). For those rows the
sender first asks the notifier whether a message with the row's idempotency key is already
there (Slack: message metadata in ``conversations.history``) and marks it sent instead of
posting again. If that look-up fails, nothing is sent blind: the attempt counts as failed.

After ``max_attempts`` failed attempts, or at once on an error that retrying cannot fix, a
message is dead-lettered; the escalation ticker then moves its chain to the next step.

Store writes are batched (``record_attempts``: one transaction for many answers), so up to one
batch can be sent but not yet recorded when a sender dies; keep ``batch`` within the history
the look-up reads (``conversations.history``, 200 messages) so those are all found.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from prodcontrol.clock import Clock
from prodcontrol.evidence.port import AttemptReport, EvidenceStore
from prodcontrol.evidence.records import DeliveryAttemptIn, Notification
from prodcontrol.ports import Delivery, Notifier, OutboundMessage

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "users_not_found",
        "user_not_found",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "missing_scope",
        "invalid_blocks",
        "msg_too_long",
        "cant_update_message",
        "message_not_found",
        "unknown_person",
        "smtp_rejected",
        "smtp_no_tls",
    }
)


@runtime_checkable
class SentLookup(Protocol):
    """A notifier that can tell whether a message with this key already went out."""

    def find_sent(self, message: OutboundMessage) -> Delivery | None: ...


@dataclass
class SendReport:
    """What one drain did; ``dead`` lists the dead-lettered notification ids."""

    claimed: int = 0
    sent: int = 0
    already_sent: int = 0
    updated: int = 0
    retried: int = 0
    dead: list[str] = field(default_factory=list)

    def add(self, other: SendReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.already_sent += other.already_sent
        self.updated += other.updated
        self.retried += other.retried
        self.dead.extend(other.dead)


def to_message(notification: Notification) -> OutboundMessage:
    payload = notification.payload
    return OutboundMessage(
        idempotency_key=notification.idempotency_key,
        recipient_kind=notification.recipient_kind,
        recipient=notification.recipient,
        text=str(payload.get("text") or ""),
        blocks=list(payload.get("blocks") or []),
        metadata={"idempotency_key": notification.idempotency_key},
        via="email" if payload.get("via") == "email" else None,
        gate_id=notification.gate_id,
        evidence_url=str(payload["evidence_url"]) if payload.get("evidence_url") else None,
    )


def maybe_sent(notification: Notification, now: datetime, lease_seconds: float) -> bool:
    """Whether an earlier sender may have delivered this row already (see the module doc)."""
    overdue = now - notification.next_attempt_at >= timedelta(seconds=lease_seconds)
    return notification.attempts > 0 or overdue


class OutboxSender:
    """Drains the outbox through a notifier; safe to run as several processes at once.

    Store writes are batched: one thread (the caller's) claims due rows in batches and records
    the answers of every delivery that finished while it was busy in ONE transaction (group
    commit: each attempt still gets its own chained events), while the pool's threads talk to
    Slack. So a burst costs a few commits per batch instead of one per message, and a quiet
    outbox still records each answer as soon as it comes.
    """

    def __init__(
        self,
        store: EvidenceStore,
        notifier: Notifier,
        clock: Clock,
        *,
        max_attempts: int = 5,
        lease_seconds: float = 60.0,
        batch: int = 100,
        workers: int = 8,
        backoff_base: float = 2.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.store, self.notifier, self.clock = store, notifier, clock
        self.max_attempts = max_attempts
        self.lease_seconds = lease_seconds
        self.batch, self.workers = max(1, batch), workers
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def drain_once(self) -> SendReport:
        """Claim one batch of due messages and deliver it."""
        now = self.clock.now()
        claimed = self.store.claim_due_notifications(now, self.batch, self.lease_seconds)
        report = SendReport(claimed=len(claimed))
        inflight = {self._submit(n, now): n for n in claimed}
        while inflight:
            report.add(self._collect(inflight, timeout=None))
        return report

    def drain(self, max_rounds: int = 1000) -> SendReport:
        """Deliver until nothing is due now (messages waiting for a retry stay for later)."""
        total = SendReport()
        for _ in range(max_rounds):
            report = self.drain_once()
            total.add(report)
            if report.claimed == 0:
                break
        return total

    def run(self, stop: threading.Event, poll_seconds: float = 1.0) -> SendReport:
        """Deliver until ``stop`` is set, looking for due messages every ``poll_seconds``.

        A pipeline rather than batch after batch: while deliveries are in flight it claims
        more as soon as half a batch of room is free, so one slow call (a 429's
        ``Retry-After``) does not hold up the rest. Stopping finishes and records what is in
        flight, and claims nothing new.
        """
        total = SendReport()
        inflight: dict[Future[Delivery], Notification] = {}
        next_claim = 0.0
        while True:
            room = self.batch - len(inflight)
            if not stop.is_set() and room * 2 >= self.batch and time.monotonic() >= next_claim:
                now = self.clock.now()
                claimed = self.store.claim_due_notifications(now, room, self.lease_seconds)
                total.claimed += len(claimed)
                # a full batch may mean more is waiting: claim again as soon as there is room
                next_claim = 0.0 if len(claimed) == room else time.monotonic() + poll_seconds
                busy = {n.id for n in inflight.values()}
                for notification in claimed:
                    if notification.id not in busy:  # its lease ran out while still in flight
                        inflight[self._submit(notification, now)] = notification
            if inflight:
                # until the next claim is due, or (no room, or stopping) until an answer comes
                room = self.batch - len(inflight)
                wait_for: float | None = max(0.0, next_claim - time.monotonic())
                if stop.is_set() or room * 2 < self.batch:
                    wait_for = None
                total.add(self._collect(inflight, timeout=wait_for))
            elif stop.is_set():
                return total
            else:
                stop.wait(max(0.0, next_claim - time.monotonic()))

    # ------------------------------------------------------------------ one batch

    def _submit(self, notification: Notification, now: datetime) -> Future[Delivery]:
        if self._pool is not None:
            return self._pool.submit(self._attempt, notification, now)
        done: Future[Delivery] = Future()
        done.set_result(self._attempt(notification, now))
        return done

    def _collect(
        self, inflight: dict[Future[Delivery], Notification], timeout: float | None
    ) -> SendReport:
        """Wait for at least one answer (at most ``timeout``), then record every answer in."""
        done, _ = wait(list(inflight), timeout=timeout, return_when=FIRST_COMPLETED)
        if not done:
            return SendReport()
        answered = [(inflight.pop(future), future.result()) for future in done]
        return self._record(answered)

    def _attempt(self, notification: Notification, now: datetime) -> Delivery:
        """One delivery; never raises, so one bad message cannot lose its batch's answers."""
        try:
            return self._deliver(notification, now)
        except Exception as exc:  # a notifier bug: recorded as a failed attempt, retried later
            return Delivery(ok=False, error=f"{type(exc).__name__}: {exc}")

    def _deliver(self, notification: Notification, now: datetime) -> Delivery:
        payload = notification.payload
        if payload.get("op") == "update":
            return self.notifier.update(
                str(payload.get("channel")),
                str(payload.get("ts")),
                str(payload.get("text") or ""),
                list(payload.get("blocks") or []),
            )
        return self._send(notification, now)

    def _send(self, notification: Notification, now: datetime) -> Delivery:
        message = to_message(notification)
        if maybe_sent(notification, now, self.lease_seconds) and isinstance(
            self.notifier, SentLookup
        ):
            found = self.notifier.find_sent(message)
            if found is not None:
                return found  # already there, or the look-up failed: never send blind
        return self.notifier.send(message)

    def _record(self, answered: list[tuple[Notification, Delivery]]) -> SendReport:
        """Record the answers of a batch in one store transaction."""
        report = SendReport()
        attempts = []
        for notification, delivery in answered:
            attempt, outcome = self._outcome(notification, delivery)
            attempts.append(attempt)
            report.add(outcome)
        self.store.record_attempts(attempts)
        return report

    def _outcome(
        self, notification: Notification, delivery: Delivery
    ) -> tuple[AttemptReport, SendReport]:
        report = SendReport()
        is_update = notification.payload.get("op") == "update"
        if delivery.ok:
            ref: dict[str, Any] = {"channel": delivery.channel, "ts": delivery.ts}
            if delivery.already_sent:
                ref["already_sent"] = True
            attempt = AttemptReport(
                notification.id,
                DeliveryAttemptIn(
                    outcome="ok",
                    status_code=delivery.status_code or 200,
                    error="already sent" if delivery.already_sent else None,
                ),
                "sent",
                provider_ref=ref,
            )
            if delivery.already_sent:
                report.already_sent = 1
            elif is_update:
                report.updated = 1
            else:
                report.sent = 1
            return attempt, report
        attempts = notification.attempts + 1
        error = delivery.error or "failed"
        permanent = error.split(":", 1)[0] in PERMANENT_ERRORS
        if attempts >= self.max_attempts or permanent:
            reason = (
                error if attempts < self.max_attempts else f"{error} (after {attempts} attempts)"
            )
            report.dead.append(notification.id)
            return AttemptReport(
                notification.id,
                DeliveryAttemptIn(outcome="failed", status_code=delivery.status_code, error=reason),
                "dead",
            ), report
        wait_s = min(self.backoff_max, self.backoff_base * 2 ** (attempts - 1))
        wait_s = max(wait_s, delivery.retry_after or 0.0)
        report.retried = 1
        return AttemptReport(
            notification.id,
            DeliveryAttemptIn(outcome="retry", status_code=delivery.status_code, error=error),
            "pending",
            next_attempt_at=self.clock.now() + timedelta(seconds=wait_s),
        ), report
