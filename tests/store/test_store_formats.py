"""A store written before RFC 8785 (format 1 entries) keeps verifying after the upgrade, and
new entries are format 2; an entry cannot be moved back to the older format."""

from __future__ import annotations

import pytest
from store_helpers import finished_run

from evidence_forgery import rewrite, sql
from prodcontrol.adapters.store.sql import SqlEvidenceStore


@pytest.fixture
def store(sql_store: SqlEvidenceStore) -> SqlEvidenceStore:
    """Raw SQL and the database's own files: the SQL adapter only (the contract is in
    test_store_runs.py and its siblings, on the in-memory fake too)."""
    return sql_store


def as_legacy_store(store: SqlEvidenceStore) -> None:
    """What migrating an older store leaves: every entry format 1, hashed the old way."""
    events = store.events()
    sql(store.url, "UPDATE pc_events SET format = 1")
    rewrite(store.url, [e.model_copy(update={"format": 1}) for e in events], lambda e: None)


def test_a_legacy_store_verifies_and_continues_in_rfc_8785(store: SqlEvidenceStore) -> None:
    finished_run(store)
    as_legacy_store(store)
    assert {e.format for e in store.events()} == {1}
    assert store.verify().ok
    finished_run(store, model="fraud")
    formats = [e.format for e in store.events()]
    assert formats[0] == 1 and formats[-1] == 2 and formats == sorted(formats)
    assert store.verify().ok


def test_an_entry_downgraded_to_the_legacy_format_is_caught(store: SqlEvidenceStore) -> None:
    finished_run(store)
    events = store.events()
    target = events[3]
    sql(store.url, "UPDATE pc_events SET format = 1 WHERE seq = :s", s=target.seq)
    rewrite(
        store.url,
        [e.model_copy(update={"format": 1}) if e.seq == target.seq else e for e in events[3:]],
        lambda e: None,
    )
    chain = store.verify().chain
    assert not chain.ok and chain.first_bad_seq == target.seq
    assert "format" in str(chain.reason)
