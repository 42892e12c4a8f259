"""While Slack is down past the tier's limit, the escalation goes out by e-mail too.

Run by every escalation tick. A Slack message to a person that is still undelivered (failing
and retried, or dead-lettered) longer than the tier's ``acknowledge_within`` after it was
queued is queued again for e-mail, under its own key (``<key>:email``): the outbox's unique key
makes it once-only however many ticks see it, and the e-mail row gets the same leases, retries
and dead letters as any other. People without an e-mail address, channels, and messages that
were e-mail already are left alone. Nothing happens without ``smtp_host``.
"""

from __future__ import annotations

from datetime import datetime

from prodcontrol.control.ports import TickPorts
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Notification, NotificationIn

SUFFIX = ":email"


def _stuck(rt: TickPorts, note: Notification, now: datetime) -> bool:
    payload = note.payload
    if note.recipient_kind != "person" or payload.get("kind") != "escalation":
        return False
    if payload.get("via") == "email" or note.idempotency_key.endswith(SUFFIX):
        return False
    if note.status == "pending" and note.attempts == 0:
        return False  # not tried yet: nothing says Slack is down
    person = rt.config.inventory.people.get(note.recipient)
    if person is None or not person.email or person.slack_id is None:
        return False  # no address, or e-mailed in the first place
    try:
        limit = rt.config.tier(rt.config.model(str(payload.get("model")))).escalation
    except UsageError:
        return False
    return now - note.created_at >= limit.acknowledge_within


def queue_email_fallback(rt: TickPorts, now: datetime) -> int:
    """Queue the e-mail copies now due; returns how many rows were new."""
    if rt.settings.smtp_host is None:
        return 0
    notes = rt.store.list_notifications(status="pending") + rt.store.list_notifications(
        status="dead"
    )
    copies = [
        NotificationIn(
            idempotency_key=note.idempotency_key + SUFFIX,
            recipient_kind="person",
            recipient=note.recipient,
            payload={**note.payload, "via": "email", "instead_of": note.id},
            escalation_id=note.escalation_id,
            gate_id=note.gate_id,
            finding_id=note.finding_id,
        )
        for note in notes
        if _stuck(rt, note, now)
    ]
    if not copies:
        return 0
    before = {n.idempotency_key for n in rt.store.list_notifications()}
    rt.store.enqueue(copies)
    return sum(1 for c in copies if c.idempotency_key not in before)
