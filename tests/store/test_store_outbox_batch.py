"""record_attempts: a whole batch of delivery answers in one transaction, each still chained."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_helpers import START, message

from prodcontrol.evidence import DeliveryAttemptIn
from prodcontrol.evidence.port import AttemptReport, EvidenceStore, RecordNotFound


def test_a_batch_is_recorded_in_one_transaction_with_an_event_per_row(
    store: EvidenceStore,
) -> None:
    notes = store.enqueue([message(f"k{i}") for i in range(4)])
    store.claim_due_notifications(START + timedelta(hours=1), limit=10, lease_seconds=60)
    retry_at = START + timedelta(hours=2)
    before, _ = store.chain_head()
    updated = store.record_attempts(
        [
            AttemptReport(
                notes[0].id,
                DeliveryAttemptIn(outcome="ok", status_code=200),
                "sent",
                provider_ref={"channel": "D1", "ts": "1.1"},
            ),
            AttemptReport(
                notes[1].id,
                DeliveryAttemptIn(outcome="retry", status_code=429, error="ratelimited"),
                "pending",
                next_attempt_at=retry_at,
            ),
            AttemptReport(
                notes[2].id,
                DeliveryAttemptIn(outcome="failed", status_code=404, error="channel_not_found"),
                "dead",
            ),
        ]
    )
    assert [n.status for n in updated] == ["sent", "pending", "dead"]
    assert updated[0].provider_ref == {"channel": "D1", "ts": "1.1"} and updated[0].sent_at
    assert (updated[1].next_attempt_at, updated[1].last_error) == (retry_at, "ratelimited")
    assert all(n.attempts == 1 and n.claimed_until is None for n in updated)
    # the untouched message keeps its lease
    untouched = next(n for n in store.list_notifications() if n.id == notes[3].id)
    assert untouched.status == "pending" and untouched.claimed_until is not None
    # one transaction: every event carries the same instant; two events per attempt, in order
    events = store.events(after_seq=before)
    assert len({e.at for e in events}) == 1
    assert [e.kind for e in events] == [
        "delivery_attempt.recorded",
        "notification.sent",
        "delivery_attempt.recorded",
        "notification.pending",
        "delivery_attempt.recorded",
        "notification.dead",
    ]
    assert [e.subject_id for e in events if e.subject_type == "notification"] == [
        n.id for n in notes[:3]
    ]
    assert store.verify().ok


def test_same_rules_as_one_attempt_a_final_message_stays_final(store: EvidenceStore) -> None:
    [note] = store.enqueue([message("k1")])
    ok = DeliveryAttemptIn(outcome="ok", status_code=200)
    late = DeliveryAttemptIn(outcome="retry", error="timeout")
    first, second = store.record_attempts(
        [AttemptReport(note.id, ok, "sent"), AttemptReport(note.id, late, "pending")]
    )
    assert (first.status, second.status, second.attempts) == ("sent", "sent", 2)
    # same instant (one transaction): the chain, not attempted_at, says which came first
    assert sorted(a.outcome for a in store.attempts_for(note.id)) == ["ok", "retry"]


def test_an_unknown_id_rolls_the_whole_batch_back(store: EvidenceStore) -> None:
    [note] = store.enqueue([message("k1")])
    head = store.chain_head()
    ok = DeliveryAttemptIn(outcome="ok", status_code=200)
    with pytest.raises(RecordNotFound, match="no-such-id"):
        store.record_attempts(
            [AttemptReport(note.id, ok, "sent"), AttemptReport("no-such-id", ok, "sent")]
        )
    assert store.chain_head() == head
    assert store.attempts_for(note.id) == []
    assert store.list_notifications(status="pending")[0].id == note.id


def test_an_empty_batch_writes_nothing(store: EvidenceStore) -> None:
    head = store.chain_head()
    assert store.record_attempts([]) == []
    assert store.chain_head() == head
