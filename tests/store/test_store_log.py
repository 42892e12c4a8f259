"""The event log: generic entries, paging, and appends from concurrent writers."""

from __future__ import annotations

import threading

import pytest

from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.errors import UsageError
from prodcontrol.evidence import GENESIS, verify_chain
from prodcontrol.evidence.port import EvidenceStore


def test_an_empty_log_starts_at_genesis(store: EvidenceStore) -> None:
    assert store.chain_head() == (0, GENESIS)
    assert store.events() == []
    assert store.verify().ok


def test_record_event_chains_a_generic_entry(store: EvidenceStore) -> None:
    first = store.record_event(
        "decision.refused", "gate", "g1", "m", {"person": "mallory", "why": "no right"}
    )
    second = store.record_event("slack.signature_refused", "request", "r1", None, {"age_s": 400})
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert (second.seq, second.prev_hash) == (2, first.hash)
    assert store.chain_head() == (2, second.hash)
    assert store.events() == [first, second]
    assert store.events(after_seq=1) == [second]
    assert store.events(limit=1) == [first]


def test_the_record_key_is_reserved_for_row_events(store: EvidenceStore) -> None:
    with pytest.raises(UsageError, match="reserved"):
        store.record_event("x", "gate", "g1", None, {"record": {}})


def test_concurrent_writers_in_two_stores_keep_one_chain(sql_store: SqlEvidenceStore) -> None:
    """Two processes' stores on one database (the in-memory store lives in one process)."""
    store = sql_store
    other = SqlEvidenceStore(store.url)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def write(target: SqlEvidenceStore, name: str) -> None:
        barrier.wait()
        try:
            for i in range(10):
                target.record_event("test.ping", "writer", name, None, {"i": i})
        except BaseException as exc:  # reported below; a thread must not swallow it
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(target, f"w{n}"))
        for n, target in enumerate([store, other, store, other])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.close()

    assert errors == []
    events = store.events()
    assert [e.seq for e in events] == list(range(1, 41))
    assert verify_chain(events, store.chain_head()).ok
