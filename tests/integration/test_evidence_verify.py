"""``prodcontrol evidence verify`` against a real database, on SQLite and PostgreSQL.

Each case tampers the way someone with database or file-system access could (raw SQL, editing a
report file) and checks that verify exits 1 and names the first broken entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from evidence_seed import Seeded, raw_sql, seeded_store, use_settings
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.cli.app import run
from prodcontrol.evidence import Event, canonical_json, entry_hash
from prodcontrol.evidence.anchor import FileAnchors
from prodcontrol.evidence.chain import GENESIS


@pytest.fixture
def seeded(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[SqlEvidenceStore, Seeded]:
    outside = tmp_path / "anchor-host" / "anchors.jsonl"  # not under the state dir
    state = use_settings(monkeypatch, tmp_path, database_url, evidence_anchor_file=str(outside))
    store, _, _, seeded = seeded_store(database_url, state, days=2)
    assert run(["evidence", "anchor", "--json"]) == 0  # what every run and tick does
    yield store, seeded  # type: ignore[misc]
    store.close()


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["evidence", "verify", "--json"])
    return code, json.loads(capsys.readouterr().out)


def event_of(store: SqlEvidenceStore, kind: str, subject_id: str | None = None) -> Event:
    return next(
        e
        for e in store.events()
        if e.kind == kind and (subject_id is None or e.subject_id == subject_id)
    )


def sql_at(store: SqlEvidenceStore, event: Event) -> Any:
    return event.at.replace(tzinfo=None) if store.url.startswith("sqlite") else event.at


def test_an_untouched_store_verifies(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = verify(capsys)
    assert code == 0, report
    assert report["intact"] and report["first_broken"] is None
    assert report["artifacts_checked"] == 12 and report["rows_checked"] > 50


def test_an_edited_verdict_is_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = seeded
    failing = next(
        e
        for e in store.events()
        if e.kind == "verdict.recorded" and e.payload["record"]["verdict"] == "fail"
    )
    raw_sql(
        store.url,
        'UPDATE pc_events SET payload = replace(payload, \'"verdict":"fail"\', '
        '\'"verdict":"pass"\') WHERE seq = :seq',
        "UPDATE pc_verdicts SET verdict = 'pass' WHERE id = :id",
        seq=failing.seq,
        id=failing.subject_id,
    )
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith(f"entry {failing.seq} (verdict.recorded verdict ")
    assert failing.subject_id in report["first_broken"] and "edited" in report["first_broken"]


def test_a_verdict_row_edited_without_its_entry_is_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = seeded
    verdict = event_of(store, "verdict.recorded")
    raw_sql(store.url, "UPDATE pc_verdicts SET value = 0.0 WHERE id = :id", id=verdict.subject_id)
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith(f"verdict {verdict.subject_id}: row differs")


def test_a_deleted_decision_is_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, seeded_ids = seeded
    [decision] = store.decisions_for(seeded_ids.approved_gate)
    entry = event_of(store, "decision.recorded", decision.id)
    raw_sql(
        store.url,
        "DELETE FROM pc_decisions WHERE id = :id",
        "DELETE FROM pc_events WHERE seq = :seq",
        id=decision.id,
        seq=entry.seq,
    )
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith(f"entry {entry.seq + 1} (")
    assert f"expected entry {entry.seq} but found {entry.seq + 1}" in report["first_broken"]


def test_a_forged_approval_inserted_in_the_middle_is_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, seeded_ids = seeded
    opened = event_of(store, "gate.opened", seeded_ids.pending_gate)
    record = {
        "id": "forged-approval",
        "gate_id": seeded_ids.pending_gate,
        "person": "chen",
        "decision": "approve",
        "channel": "web",
        "reason": "looks fine",
        "decided_at": "2026-11-06T06:00:00.000000Z",
    }
    seq = opened.seq + 1
    payload = {"record": record}
    digest = entry_hash(
        opened.hash,
        seq,
        opened.at,
        "decision.recorded",
        "decision",
        "forged-approval",
        "fraud-detector",
        payload,
    )
    raw_sql(
        store.url,
        "UPDATE pc_events SET seq = seq + 100000 WHERE seq > :after",
        "UPDATE pc_events SET seq = seq - 99999 WHERE seq > 100000",
        after=opened.seq,
    )
    raw_sql(
        store.url,
        "INSERT INTO pc_events (seq, at, kind, subject_type, subject_id, model, payload, "
        "prev_hash, hash, format) VALUES (:seq, :at, 'decision.recorded', 'decision', "
        "'forged-approval', 'fraud-detector', :payload, :prev, :hash, 2)",
        "INSERT INTO pc_decisions (id, gate_id, person, decision, channel, reason, decided_at) "
        "VALUES ('forged-approval', :gate, 'chen', 'approve', 'web', 'looks fine', :at)",
        seq=seq,
        at=sql_at(store, opened),
        payload=canonical_json(payload),
        prev=opened.hash,
        hash=digest,
        gate=seeded_ids.pending_gate,
    )
    code, report = verify(capsys)
    assert code == 1
    broken = report["first_broken"]
    assert broken.startswith(f"entry {seq + 1} (") and "prev_hash does not match" in broken
    assert "forged-approval" in broken  # the entry before the break is the forged one


def test_two_reordered_entries_are_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = seeded
    raw_sql(
        store.url,
        "UPDATE pc_events SET seq = 100000 WHERE seq = 5",
        "UPDATE pc_events SET seq = 5 WHERE seq = 6",
        "UPDATE pc_events SET seq = 6 WHERE seq = 100000",
    )
    code, report = verify(capsys)
    assert code == 1 and report["first_broken"].startswith("entry 5 (")


def test_a_changed_or_missing_report_file_is_named(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    _, seeded_ids = seeded
    changed, missing = seeded_ids.artifacts[0], seeded_ids.artifacts[3]
    changed.write_text(changed.read_text().replace("drift", "dr1ft", 1))
    missing.unlink()
    code, report = verify(capsys)
    assert code == 1
    assert report["first_broken"].startswith("artifact ")
    assert f"file {changed} was changed" in report["first_broken"]
    assert any(f"file {missing} is missing" in p for p in report["problems"])


def test_the_table_output_names_the_entry_on_stderr(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = seeded
    raw_sql(store.url, "DELETE FROM pc_events WHERE seq = 3")
    assert run(["evidence", "verify"]) == 1
    captured = capsys.readouterr()
    assert "BROKEN" in captured.out and "entry 4 (" in captured.err


def rehash_everything(store: SqlEvidenceStore) -> None:
    """What a forger who knows the algorithm does: edit, then recompute every hash after it."""
    events = store.events()
    prev = GENESIS
    statements, params = [], {}
    for event in events:
        payload = event.payload
        if event.kind == "verdict.recorded" and payload["record"]["verdict"] == "fail":
            payload = {**payload, "record": {**payload["record"], "verdict": "pass"}}
        digest = entry_hash(
            prev,
            event.seq,
            event.at,
            event.kind,
            event.subject_type,
            event.subject_id,
            event.model,
            payload,
        )
        n = event.seq
        statements.append(
            f"UPDATE pc_events SET payload = :p{n}, prev_hash = :r{n}, hash = :h{n} WHERE seq = {n}"
        )
        params |= {f"p{n}": canonical_json(payload), f"r{n}": prev, f"h{n}": f"tmp{n:061d}"}
        params[f"h{n}"] = digest
        prev = digest
    raw_sql(
        store.url,
        "UPDATE pc_events SET hash = 'x' || seq",
        *statements,
        "UPDATE pc_chain_head SET hash = :head",
        head=prev,
        **params,
    )
    raw_sql(store.url, "UPDATE pc_verdicts SET verdict = 'pass' WHERE verdict = 'fail'")


def test_a_rewritten_chain_passes_alone_but_not_against_the_anchor(
    seeded: tuple[SqlEvidenceStore, Seeded], capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = seeded
    [anchor] = FileAnchors(
        Path(os.environ["PRODCONTROL_CONFIG"]).parent / "anchor-host" / "anchors.jsonl"
    ).read_anchors()
    anchored = {"entry": anchor.seq}
    rehash_everything(store)
    assert store.verify().ok  # the chain alone cannot tell: every hash was recomputed
    code, report = verify(capsys)
    assert code == 1 and report["anchors_checked"] == 1
    assert report["first_broken"].startswith(f"entry {anchored['entry']}: hash ")
    assert "differs from the anchor of" in report["first_broken"]
