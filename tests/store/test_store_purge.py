"""Retention: purge refuses inside the retention period, removes a log prefix and the rows only
it describes, keeps what newer evidence refers to, and records itself in the chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_helpers import finished_run

from evidence_seed import raw_sql, seed, use_settings
from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.config import Config
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.cli.app import run
from prodcontrol.errors import UsageError
from prodcontrol.evidence import WaiverIn
from prodcontrol.evidence.retention import PURGE_KIND
from prodcontrol.testing import ManualClock


@pytest.fixture
def store(sql_store: SqlEvidenceStore) -> SqlEvidenceStore:
    """Raw SQL and the database's own files: the SQL adapter only (the contract is in
    test_store_runs.py and its siblings, on the in-memory fake too)."""
    return sql_store


OLD = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def aged(database_url: str, tmp_path: Path) -> Iterator[tuple[SqlEvidenceStore, ManualClock]]:
    """Evidence from March (two days of runs), a waiver granted now on an old finding, and a
    run from now."""
    upgrade(database_url)
    clock = ManualClock()
    store = SqlEvidenceStore(database_url, clock=clock)
    config: Config = load_config(default_catalog_dir(), EXAMPLES)
    seed(store, config, clock, tmp_path / "state" / "artifacts", days=2, start=OLD)
    clock.set(NOW - timedelta(days=1))
    old_finding = store.list_findings(model="fraud-detector", status="open")[0]
    store.grant_waiver(
        WaiverIn(
            finding_id=old_finding.id,
            model="fraud-detector",
            control_id=old_finding.control_id,
            reason="accepted until retraining",
            approver="dana",
            expires_at=NOW + timedelta(days=30),
        )
    )
    finished_run(store)
    clock.set(NOW)
    try:
        yield store, clock
    finally:
        store.close()


def test_a_purge_inside_the_retention_period_is_refused(
    aged: tuple[SqlEvidenceStore, ManualClock],
) -> None:
    store, _ = aged
    before = len(store.events())
    with pytest.raises(UsageError, match="retention period is 183 days"):
        store.purge(datetime(2026, 6, 1, tzinfo=UTC), retention_days=183, by="test")
    assert len(store.events()) == before


def test_a_purge_removes_old_evidence_and_records_itself(
    aged: tuple[SqlEvidenceStore, ManualClock],
) -> None:
    store, _ = aged
    runs_before = store.list_runs()
    report = store.purge(datetime(2026, 4, 1, tzinfo=UTC), retention_days=183, by="dana")
    assert report.events_deleted > 0 and report.event_seq is not None
    assert report.deleted["run"] == len(runs_before) - 2  # one kept for the waiver, one new
    # the finding was waived now (a new entry); its run and verdict are old but referenced
    assert report.retained == {"run": 1, "verdict": 1}
    assert len(report.artifact_paths) == report.deleted["artifact"]
    first = store.events()[0]
    assert first.seq == report.through_seq + 1
    [purge] = [e for e in store.events() if e.kind == PURGE_KIND]
    assert (
        purge.payload["by"] == "dana" and purge.payload["deleted"]["run"] == report.deleted["run"]
    )
    verified = store.verify()
    assert verified.ok, verified
    assert {r.model for r in store.list_runs()} == {"credit-risk", "fraud-detector"}
    assert len(store.list_waivers()) == 1


def test_a_second_purge_with_nothing_to_remove_writes_nothing(
    aged: tuple[SqlEvidenceStore, ManualClock],
) -> None:
    store, _ = aged
    store.purge(datetime(2026, 4, 1, tzinfo=UTC), retention_days=183, by="test")
    head = store.chain_head()
    again = store.purge(datetime(2026, 4, 1, tzinfo=UTC), retention_days=183, by="test")
    assert again.nothing and again.event_seq is None and store.chain_head() == head


def test_a_prefix_cut_without_a_recorded_purge_is_found(
    aged: tuple[SqlEvidenceStore, ManualClock],
) -> None:
    store, _ = aged
    raw_sql(store.url, "DELETE FROM pc_events WHERE seq <= 10")
    chain = store.verify().chain
    assert not chain.ok and chain.first_bad_seq == 11 and "expected entry 1" in str(chain.reason)


def test_purge_through_the_cli(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = use_settings(monkeypatch, tmp_path, database_url)
    upgrade(database_url)
    clock = ManualClock()
    store = SqlEvidenceStore(database_url, clock=clock)
    config = load_config(default_catalog_dir(), EXAMPLES)
    seeded = seed(store, config, clock, state / "artifacts", days=1, start=OLD)
    store.close()
    capsys.readouterr()
    assert run(["evidence", "purge", "--before", "2099-01-01"]) == 2
    assert "refusing to purge" in capsys.readouterr().err
    assert run(["evidence", "purge", "--before", "2026-04-01", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_deleted"]["run"] == 3 and report["artifact_files_deleted"] == 6
    assert not any(path.exists() for path in seeded.artifacts)
    assert run(["evidence", "verify"]) == 0
