"""Signed chain heads, on SQLite and PostgreSQL, through the CLI a user runs.

The attacker has write access to the evidence database and nothing else: they rewrite, append
and strip entries and recompute every hash (tests/evidence_forgery.py). The signing key lives
in a file they cannot read, so every forgery leaves a head that is not signed by it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_forgery import append_forged, rewrite, sql
from evidence_seed import Seeded, seeded_store, use_settings
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.cli.app import run
from prodcontrol.errors import UsageError
from prodcontrol.evidence import DecisionIn
from prodcontrol.evidence.integrity import verify_evidence
from prodcontrol.evidence.signing import SigningKey


def keygen(capsys: pytest.CaptureFixture[str], out: Path) -> dict[str, Any]:
    capsys.readouterr()
    assert run(["evidence", "keygen", "--out", str(out), "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["evidence", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


class World:
    def __init__(self, store: SqlEvidenceStore, seeded: Seeded, key: SigningKey, path: Path):
        self.store, self.seeded, self.key, self.key_path = store, seeded, key, path

    @property
    def url(self) -> str:
        return self.store.url


@pytest.fixture
def signed(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[World]:
    key_path = tmp_path / "keys" / "evidence.key"  # outside the state dir and the database
    state = use_settings(monkeypatch, tmp_path, database_url)
    made = keygen(capsys, key_path)
    monkeypatch.setenv("PRODCONTROL_EVIDENCE_SIGNING_KEY", str(key_path))
    key = SigningKey.load(key_path)
    assert made["key_id"] == key.key_id
    store, _, _, seeded = seeded_store(database_url, state, days=2, signer=key)
    yield World(store, seeded, key, key_path)
    store.close()


def test_every_commit_signs_its_head_and_verify_says_signed(
    signed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    events = signed.store.events()
    assert events[0].kind == "evidence.key_added" or any(
        e.kind == "evidence.key_added" for e in events
    )
    signatures = signed.store.head_signatures()
    assert signatures[-1].seq == signed.store.chain_head()[0]
    assert len(signatures) >= 20  # one per commit, not per entry
    assert len(signatures) < len(events)
    code, report = verify(capsys)
    assert code == 0, report
    assert report["signing"] == "signed" and report["signed_by"] == signed.key.key_id
    assert report["signatures_checked"] == len(signatures)


def test_a_rewritten_approval_with_every_hash_recomputed_is_caught(
    signed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack of issue 16: change who approved, re-chain everything, move the head."""
    store = signed.store
    [decision] = store.decisions_for(signed.seeded.approved_gate)
    events = store.events()
    entry = next(e for e in events if e.subject_id == decision.id)

    def edit(event: Any) -> dict[str, Any] | None:
        if event.seq != entry.seq:
            return None
        record = {**event.payload["record"], "person": "mallory"}
        return {**event.payload, "record": record}

    rewrite(signed.url, [e for e in events if e.seq >= entry.seq], edit)
    sql(signed.url, "UPDATE pc_decisions SET person = 'mallory' WHERE id = :id", id=decision.id)
    assert store.verify().ok  # the database agrees with itself: only the signatures can tell
    code, report = verify(capsys)
    assert code == 1
    assert report["signing"] == "broken"
    found = re.match(
        r"entry (\d+): its hash .* an entry from (\d+) to (\d+) was rewritten",
        report["first_broken"],
    )
    assert found, report["first_broken"]
    assert int(found[2]) <= entry.seq <= int(found[3]) == int(found[1])


def test_a_forged_entry_appended_at_the_end_is_caught(
    signed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    store = signed.store
    head = store.events()[-1]
    append_forged(
        signed.url,
        head,
        "decision.recorded",
        "decision",
        "forged",
        "fraud-detector",
        {"record": {"id": "forged", "person": "chen", "decision": "approve"}},
    )
    assert store.verify().chain.ok
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith(f"entry {head.seq + 1}: the head is not signed")


def test_stripping_every_signature_and_key_entry_is_caught(
    signed: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Remove the signatures and the key entry, re-chain: looks like an unsigned store."""
    store = signed.store
    events = store.events()
    key_entry = next(e for e in events if e.kind == "evidence.key_added")
    sql(signed.url, "DELETE FROM pc_head_signatures")
    sql(signed.url, "DELETE FROM pc_events WHERE seq = :s", s=key_entry.seq)
    later = [e for e in events if e.seq > key_entry.seq]
    renumbered = [e.model_copy(update={"seq": e.seq - 1}) for e in later]
    # in two steps, as an operator would: PostgreSQL checks the primary key row by row, so a
    # one-step shift fails whenever the rows are not stored in ascending order
    sql(signed.url, "UPDATE pc_events SET seq = -(seq - 1) WHERE seq > :s", s=key_entry.seq)
    sql(signed.url, "UPDATE pc_events SET seq = -seq WHERE seq < 0")
    if renumbered:
        first = renumbered[0]
        before = [e for e in events if e.seq == key_entry.seq - 1]
        prev = before[0].hash if before else "0" * 64
        renumbered[0] = first.model_copy(update={"prev_hash": prev})
        rewrite(signed.url, renumbered, lambda e: None)
    assert store.verify().ok
    code, report = verify(capsys)
    assert code == 1
    assert "the head is not signed" in report["first_broken"]
    assert any(
        "the store has no signing key, but the configured key" in p for p in report["problems"]
    )


def test_a_wrong_key_is_refused_for_writes_and_named_by_verify(
    signed: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    other = tmp_path / "other.key"
    keygen(capsys, other)
    monkeypatch.setenv("PRODCONTROL_EVIDENCE_SIGNING_KEY", str(other))
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith("wrong key: the chain is signed by key(s) ")
    wrong = SqlEvidenceStore(signed.url, signer=SigningKey.load(other))
    with pytest.raises(UsageError, match=r"signed by key \w+, but evidence_signing_key is"):
        wrong.record_event("note", "evidence", "x", None, {"n": 1})
    unsigned = SqlEvidenceStore(signed.url)
    with pytest.raises(UsageError, match="this process has no signing key"):
        unsigned.record_event("note", "evidence", "x", None, {"n": 1})
    wrong.close()
    unsigned.close()
    assert verify_evidence(signed.store, trusted=[signed.key.verify_key]).ok


def test_a_rotated_key_keeps_the_chain_verifiable_with_either_key(
    signed: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    new_path = tmp_path / "keys" / "evidence-2027.key"
    keygen(capsys, new_path)
    capsys.readouterr()
    assert run(["evidence", "rotate-key", "--new", str(new_path), "--json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert rotated["old_key"] == signed.key.key_id
    new = SigningKey.load(new_path)
    assert rotated["new_key"] == new.key_id
    monkeypatch.setenv("PRODCONTROL_EVIDENCE_SIGNING_KEY", str(new_path))
    after = SqlEvidenceStore(signed.url, signer=new)
    gate = after.get_gate(signed.seeded.pending_gate)
    decision = DecisionIn(person="chen", decision="approve", channel="cli", reason="rotated")
    after.record_decision(gate.id, decision, gate.version, None)
    code, report = verify(capsys)
    assert code == 0, report
    assert report["signing"] == "signed" and report["signed_by"] == new.key_id
    assert verify_evidence(after, trusted=[signed.key.verify_key]).signing.state == "signed"
    # the old key cannot write any more: it was replaced
    with pytest.raises(UsageError, match="rotate-key"):
        signed.store.record_event("note", "evidence", "x", None, {"n": 1})
    after.close()


def test_a_key_swapped_in_without_rotation_is_caught(
    signed: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator deletes the signatures and lets a process with their own key re-sign."""
    sql(signed.url, "DELETE FROM pc_head_signatures")
    own = SqlEvidenceStore(signed.url, signer=SigningKey.generate())
    own.record_event("note", "evidence", "x", None, {"n": 1})
    own.close()
    code, report = verify(capsys)
    assert code == 1
    problems = " ".join(report["problems"])
    assert "a second signing key" in problems


def test_an_unsigned_store_still_works_and_says_so(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = use_settings(monkeypatch, tmp_path, database_url)
    store, _, _, _ = seeded_store(database_url, state, days=1)
    assert store.head_signatures() == []
    code, report = verify(capsys)
    assert code == 0, report
    assert report["signing"] == "unsigned" and report["signed_by"] is None
    store.close()
