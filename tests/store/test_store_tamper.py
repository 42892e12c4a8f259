"""Tamper evidence: edits made behind the store's back, with raw SQL, are found by verify()."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, text
from store_helpers import finished_run

from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.evidence import Event, canonical_json, entry_hash, verify_chain


@pytest.fixture
def store(sql_store: SqlEvidenceStore) -> SqlEvidenceStore:
    """Raw SQL and the database's own files: the SQL adapter only (the contract is in
    test_store_runs.py and its siblings, on the in-memory fake too)."""
    return sql_store


def raw(store: SqlEvidenceStore, *statements: str, **params: Any) -> None:
    """Run SQL directly against the store's database, as someone with DB access could."""
    engine = create_engine(store.url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)
    finally:
        engine.dispose()


@pytest.fixture
def filled(store: SqlEvidenceStore) -> SqlEvidenceStore:
    finished_run(store)
    store.record_event("decision.refused", "gate", "g-1", "credit-risk", {"person": "mallory"})
    assert len(store.events()) == 9
    return store


def test_an_untouched_store_verifies(filled: SqlEvidenceStore) -> None:
    report = filled.verify()
    assert report.ok, report
    assert report.chain.count == 9 and report.rows_checked == 7
    assert (report.chain.head_seq, report.chain.head_hash) == filled.chain_head()
    assert verify_chain(filled.events(), filled.chain_head()).ok


def test_an_edited_payload_is_found(filled: SqlEvidenceStore) -> None:
    raw(
        filled,
        "UPDATE pc_events SET payload = replace(payload, '\"fail\"', '\"pass\"') WHERE seq = 3",
    )
    report = filled.verify()
    assert not report.ok
    assert (report.chain.first_bad_seq, report.chain.count) == (3, 2)
    assert "edited" in str(report.chain.reason)


def test_a_deleted_entry_is_found(filled: SqlEvidenceStore) -> None:
    raw(filled, "DELETE FROM pc_events WHERE seq = 4")
    chain = filled.verify().chain
    assert not chain.ok and chain.first_bad_seq == 5 and "expected entry 4" in str(chain.reason)


def test_an_inserted_entry_is_found_even_with_a_correct_hash(filled: SqlEvidenceStore) -> None:
    before = filled.events()
    forged = forge_after(before[1], {"note": "backdated approval"})
    raw(
        filled,
        "UPDATE pc_events SET seq = seq + 1000 WHERE seq >= 3",
        "UPDATE pc_events SET seq = seq - 999 WHERE seq >= 1000",
        "INSERT INTO pc_events (seq, at, kind, subject_type, subject_id, model, payload, "
        "prev_hash, hash, format) VALUES (:seq, :at, :kind, :st, :sid, :model, :payload, :prev, "
        ":hash, 2)",
        seq=forged.seq,
        at=forged.at.replace(tzinfo=None) if is_sqlite(filled) else forged.at,
        kind=forged.kind,
        st=forged.subject_type,
        sid=forged.subject_id,
        model=forged.model,
        payload=canonical_json(forged.payload),
        prev=forged.prev_hash,
        hash=forged.hash,
    )
    chain = filled.verify().chain
    assert not chain.ok and chain.first_bad_seq == 4


def test_reordered_entries_are_found(filled: SqlEvidenceStore) -> None:
    raw(
        filled,
        "UPDATE pc_events SET seq = 100 WHERE seq = 5",
        "UPDATE pc_events SET seq = 5 WHERE seq = 6",
        "UPDATE pc_events SET seq = 6 WHERE seq = 100",
    )
    chain = filled.verify().chain
    assert not chain.ok and chain.first_bad_seq == 5


def test_entries_cut_from_the_end_are_found_through_the_head(filled: SqlEvidenceStore) -> None:
    raw(filled, "DELETE FROM pc_events WHERE seq >= 8")
    chain = filled.verify().chain
    assert not chain.ok and chain.first_bad_seq == 8 and "end" in str(chain.reason)
    assert verify_chain(filled.events()).ok  # without the head, a cut tail is invisible


def test_a_table_row_edited_directly_is_found(filled: SqlEvidenceStore) -> None:
    raw(filled, "UPDATE pc_verdicts SET verdict = 'pass', value = 0.01 WHERE verdict = 'fail'")
    report = filled.verify()
    assert report.chain.ok and not report.ok
    [problem] = report.mismatches
    assert problem.startswith("verdict ") and "value, verdict" in problem


def test_table_rows_deleted_or_inserted_directly_are_found(filled: SqlEvidenceStore) -> None:
    raw(
        filled,
        "DELETE FROM pc_artifacts WHERE verdict_id IS NULL",
        "INSERT INTO pc_actions (id, model, model_version, action, params, requested_by, status, "
        "result, created_at) VALUES ('forged', 'credit-risk', '7', 'promote', '{}', 'mallory', "
        "'applied', '{}', '2026-11-02 10:00:00')",
    )
    problems = filled.verify().mismatches
    assert any(p.startswith("artifact ") and "deleted" in p for p in problems)
    assert any(p.startswith("action forged") and "no event" in p for p in problems)


def is_sqlite(store: SqlEvidenceStore) -> bool:
    return store.url.startswith("sqlite")


def forge_after(previous: Event, payload: dict[str, Any]) -> Event:
    """An entry a forger with the algorithm could compute to follow ``previous``."""
    seq = previous.seq + 1
    digest = entry_hash(
        previous.hash, seq, previous.at, "gate.approved", "gate", "g-9", "credit-risk", payload
    )
    return Event(
        seq=seq,
        at=previous.at,
        kind="gate.approved",
        subject_type="gate",
        subject_id="g-9",
        model="credit-risk",
        payload=payload,
        prev_hash=previous.hash,
        hash=digest,
    )
