"""Domain events: queued with the change they report, leased once, settled, retried, once-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_helpers import START, gate_for

from prodcontrol.errors import StoreConflict
from prodcontrol.evidence import DecisionIn, DomainEventIn
from prodcontrol.evidence.port import EvidenceStore


def closed(gate_id: str) -> DomainEventIn:
    return DomainEventIn(kind="gate_decided", key=f"gate_decided:{gate_id}", gate_id=gate_id)


def approve(person: str) -> DecisionIn:
    return DecisionIn(person=person, decision="approve", channel="cli", reason="fine")


def test_an_event_commits_with_the_decision_and_is_leased_once(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    store.record_decision(gate.id, approve("bob"), 1, "approved", events=[closed(gate.id)])
    [event] = store.list_domain_events(status="pending", gate_id=gate.id)
    assert (event.kind, event.attempts, event.next_attempt_at) == (
        "gate_decided",
        0,
        event.created_at,
    )
    now = START + timedelta(hours=1)
    [claimed] = store.claim_domain_events(now, lease_seconds=60)
    assert claimed.status == "applying" and claimed.next_attempt_at is not None
    assert store.claim_domain_events(now) == []  # leased
    retry_at = now + timedelta(minutes=5)
    again = store.settle_domain_event(claimed.id, "pending", {"s": "later"}, retry_at=retry_at)
    assert (again.status, again.attempts, again.next_attempt_at) == ("pending", 1, retry_at)
    assert store.claim_domain_events(now + timedelta(minutes=1)) == []  # not due yet
    [second] = store.claim_domain_events(retry_at, gate_id=gate.id)
    done = store.settle_domain_event(second.id, "done", {"s": "ok"})
    assert (done.status, done.attempts, done.result) == ("done", 2, {"s": "ok"})
    assert done.done_at is not None and done.next_attempt_at is None
    with pytest.raises(StoreConflict, match="not being handled"):
        store.settle_domain_event(done.id, "dead", {})
    assert store.verify().ok


def test_a_lease_that_ran_out_is_claimable_again(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    store.expire_gate(gate.id, gate.version, events=[closed(gate.id)])
    now = START + timedelta(hours=1)
    [first] = store.claim_domain_events(now, lease_seconds=60)
    [taken_over] = store.claim_domain_events(now + timedelta(seconds=61))
    assert taken_over.id == first.id
    assert store.claim_domain_events(now, gate_id="another-gate") == []


def test_a_refused_decision_writes_no_event_and_a_key_is_once_only(store: EvidenceStore) -> None:
    gate = store.open_gate(gate_for())
    with pytest.raises(StoreConflict):
        store.record_decision(gate.id, approve("bob"), 7, "approved", events=[closed(gate.id)])
    assert store.list_domain_events() == []
    other = store.open_gate(gate_for(model="fraud"))
    head = store.chain_head()
    with pytest.raises(StoreConflict):
        store.record_decision(other.id, approve("bob"), 1, "approved", events=[closed(gate.id)] * 2)
    assert store.chain_head() == head and store.get_gate(other.id).status == "pending"
    assert store.list_domain_events() == []
