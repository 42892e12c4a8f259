"""The outbox and escalations: once-only messages, leases that two senders never share."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from store_helpers import START, finished_run, message

from prodcontrol.errors import StoreConflict, UsageError
from prodcontrol.evidence import DeliveryAttemptIn, EscalationIn
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import Notification


def test_enqueue_is_idempotent_on_the_key(store: EvidenceStore) -> None:
    [first] = store.enqueue([message("k1")])
    [again] = store.enqueue([message("k1")])
    assert again == first and len(store.list_notifications()) == 1


def test_control_id_outside_finish_run_is_refused(store: EvidenceStore) -> None:
    with pytest.raises(UsageError, match="only inside finish_run"):
        store.enqueue([message("k1", control_id="drift_psi")])


def test_claim_leases_due_messages(store: EvidenceStore) -> None:
    store.enqueue([message("k1"), message("k2")])
    now = START + timedelta(hours=1)
    claimed = store.claim_due_notifications(now, limit=10, lease_seconds=60)
    assert {n.idempotency_key for n in claimed} == {"k1", "k2"}
    assert store.claim_due_notifications(now, limit=10) == []
    later = now + timedelta(seconds=61)
    assert len(store.claim_due_notifications(later, limit=1)) == 1


def test_messages_not_yet_due_are_not_claimed(store: EvidenceStore) -> None:
    store.enqueue([message("k1").model_copy(update={"next_attempt_at": START + timedelta(days=1)})])
    assert store.claim_due_notifications(START + timedelta(hours=1), limit=10) == []


def test_two_concurrent_claimers_never_get_the_same_message(store: EvidenceStore) -> None:
    store.enqueue([message(f"k{i}") for i in range(30)])
    now = START + timedelta(hours=1)
    barrier = threading.Barrier(2)
    got: dict[int, list[Notification]] = {0: [], 1: []}

    def sender(index: int) -> None:
        barrier.wait()
        while batch := store.claim_due_notifications(now, limit=4):
            got[index].extend(batch)

    threads = [threading.Thread(target=sender, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    ids = [n.id for n in got[0] + got[1]]
    assert len(ids) == 30 and len(set(ids)) == 30


def test_record_attempt_retry_then_sent(store: EvidenceStore) -> None:
    [note] = store.enqueue([message("k1")])
    retry_at = START + timedelta(hours=2)
    retried = store.record_attempt(
        note.id,
        DeliveryAttemptIn(outcome="retry", status_code=429, error="ratelimited"),
        "pending",
        next_attempt_at=retry_at,
    )
    assert (retried.attempts, retried.last_error, retried.next_attempt_at) == (
        1,
        "ratelimited",
        retry_at,
    )
    sent = store.record_attempt(
        note.id,
        DeliveryAttemptIn(outcome="ok", status_code=200),
        "sent",
        provider_ref={"channel": "D1", "ts": "1.2"},
    )
    assert sent.status == "sent" and sent.sent_at is not None and sent.attempts == 2
    assert sent.provider_ref == {"channel": "D1", "ts": "1.2"} and sent.last_error is None
    late = store.record_attempt(
        note.id, DeliveryAttemptIn(outcome="retry", error="timeout"), "pending"
    )
    assert late.status == "sent" and late.attempts == 3
    assert [a.outcome for a in store.attempts_for(note.id)] == ["retry", "ok", "retry"]
    assert store.list_notifications(status="sent") == [late]


def test_escalation_steps_until_acknowledged(store: EvidenceStore) -> None:
    finished_run(store)
    [finding] = store.list_findings()
    due = START + timedelta(minutes=30)
    escalation = store.start_escalation(
        EscalationIn(finding_id=finding.id, model="credit-risk", tier="high", next_due_at=due),
        notifications=[message("e-0")],
    )
    assert escalation.status == "active" and escalation.step == 0
    step = store.advance_escalation(
        escalation.id, 1, due + timedelta(minutes=30), notifications=[message("e-1")]
    )
    assert step.step == 1
    escalated = [n for n in store.list_notifications() if n.escalation_id == escalation.id]
    assert {n.idempotency_key for n in escalated} == {"e-0", "e-1"}
    assert all(n.finding_id == finding.id for n in escalated)

    with pytest.raises(StoreConflict):
        store.advance_escalation(escalation.id, 1, None)
    acked = store.acknowledge_escalation(escalation.id, "bob")
    assert (acked.status, acked.acknowledged_by, acked.next_due_at) == ("acknowledged", "bob", None)
    assert store.acknowledge_escalation(escalation.id, "carol") == acked
    with pytest.raises(StoreConflict, match="acknowledged"):
        store.advance_escalation(escalation.id, 2, None)
    resolved = store.resolve_escalation(escalation.id, "gate approved")
    assert resolved.status == "resolved" and resolved.closed_at is not None
    assert store.list_escalations(status="resolved") == [resolved]


def test_an_escalation_without_a_next_step_is_exhausted(store: EvidenceStore) -> None:
    escalation = store.start_escalation(EscalationIn(model="m", tier="low"))
    exhausted = store.advance_escalation(escalation.id, 1, None)
    assert exhausted.status == "exhausted" and exhausted.closed_at is not None
    assert store.get_escalation(escalation.id) == exhausted
