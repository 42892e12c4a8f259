"""Automatic anchors and honest purges, on SQLite and PostgreSQL.

Control runs (the real ``run_checks`` on fake MLflow data) and ticker ticks (the real
``escalation.tick``) anchor the signed head to a file outside the state dir, at most once per
``evidence_anchor_interval_s``. The attacks: cut the newest entries back to an older signed
head, delete the anchor file, let anchoring lapse, purge with the retention check removed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect_world import KeyedChecker, fleet_inventory, small_catalog

from evidence_forgery import cut_tail, sql
from prodcontrol.adapters.mlflow_anchor import anchor_sinks
from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.validate import load_config
from prodcontrol.control.escalation import escalation
from prodcontrol.control.runs.anchoring import anchor_if_due
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.evidence.anchor import ANCHORED_KIND, FileAnchors
from prodcontrol.evidence.integrity import VerifyPolicy, VerifyReport, verify_evidence
from prodcontrol.evidence.signing import SigningKey
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeDatasetSource, FakeRegistry, ManualClock

START = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
KEY = SigningKey.generate()


def fleet(database_url: str, tmp_path: Path, clock: ManualClock, anchor_file: Path) -> Runtime:
    catalog = small_catalog(tmp_path / "catalog")
    names = fleet_inventory(tmp_path / "inventory", {"low": 1, "high": 1})
    config = load_config(catalog, tmp_path / "inventory")
    registry = FakeRegistry()
    datasets = FakeDatasetSource()
    import pandas as pd

    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "channel": ["web", "pos", "web"]})
    for name in names:
        for version in ("1", "2"):
            registry.add_version(name, version, tags={"prodcontrol.approved": "true"})
        registry.set_alias(name, "champion", "2")
        for side in ("reference", "current"):
            datasets.add(f"data/{name}-{side}.csv", frame)
    upgrade(database_url)
    settings = Settings(
        state_dir=tmp_path / "state",
        catalog_dir=catalog,
        inventory_dir=tmp_path / "inventory",
        database_url=database_url,
        evidence_anchor_file=anchor_file,
        evidence_anchor_interval_s=3600,
        evidence_anchor_max_age_s=6 * 3600,
    )
    return Runtime(
        settings,
        clock,
        config=config,
        store=SqlEvidenceStore(database_url, clock=clock, signer=KEY),
        registry=registry,
        metrics=registry,
        datasets=datasets,
        checker=KeyedChecker({"high-model-0": 0.9}, 0.0),
    )


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Runtime:
    clock = ManualClock(START)
    return fleet(database_url, tmp_path, clock, tmp_path / "anchor-host" / "anchors.jsonl")


def verify(rt: Runtime) -> VerifyReport:
    policy = VerifyPolicy(
        now=rt.clock.now(),
        anchor_max_age=timedelta(seconds=rt.settings.evidence_anchor_max_age_s),
        retention_days=rt.settings.retention_days,
    )
    return verify_evidence(rt.store, anchor_sinks(rt.settings), [KEY.verify_key], policy)


def anchors(rt: Runtime) -> list[int]:
    assert rt.settings.evidence_anchor_file is not None
    return [a.seq for a in FileAnchors(rt.settings.evidence_anchor_file).read_anchors()]


def clock_of(rt: Runtime) -> ManualClock:
    assert isinstance(rt.clock, ManualClock)
    return rt.clock


def test_runs_and_ticks_anchor_the_signed_head_at_most_once_an_interval(world: Runtime) -> None:
    run_checks(world, "low-model-0")
    [first] = anchors(world)
    assert first == world.store.chain_head()[0] - 1  # then the anchoring itself was chained
    [anchor] = FileAnchors(world.settings.evidence_anchor_file).read_anchors()  # type: ignore[arg-type]
    assert anchor.key_id == KEY.key_id and anchor.signature
    run_checks(world, "high-model-0")  # ten seconds later: not due
    escalation.tick(world)
    assert anchors(world) == [first]
    clock_of(world).advance(timedelta(hours=1, seconds=1))
    escalation.tick(world)
    assert len(anchors(world)) == 2 and anchors(world)[-1] > first
    report = verify(world)
    assert report.ok, report.problems
    assert report.signing.state == "signed" and report.anchors_checked == 2


def test_an_anchor_sink_down_during_a_run_leaves_a_gap_verify_reports(
    world: Runtime, tmp_path: Path
) -> None:
    host = tmp_path / "anchor-host"
    host.write_text("the anchor host is down")  # a file where the directory should be
    result = run_checks(world, "high-model-0")
    assert result.run_id and world.store.get_run(result.run_id).status != "running"
    [entry] = [e for e in world.store.events() if e.kind == ANCHORED_KIND]
    assert entry.payload["written_to"] == [] and entry.payload["failed"]
    host.unlink()  # back up, but it never got the anchor
    report = verify(world)
    assert report.ok and any("failed" in w for w in report.warnings)
    clock_of(world).advance(timedelta(hours=7))
    report = verify(world)
    assert not report.ok
    assert "not anchored in file" in str(report.first_broken)
    assert "could have been cut or replaced" in str(report.first_broken)


def test_cutting_the_newest_entries_back_to_an_older_signed_head_is_caught(
    world: Runtime,
) -> None:
    run_checks(world, "low-model-0")
    keep = world.store.chain_head()[0]
    clock_of(world).advance(timedelta(hours=2))
    run_checks(world, "high-model-0")  # anchors again: the head is now outside the database
    anchored = anchors(world)[-1]
    cut_tail(world.store.url, world.store.events(), keep)  # to a head that *is* signed
    assert world.store.verify().chain.ok  # (the forger would delete the later rows too)
    report = verify(world)
    assert not report.ok and report.signing.state == "signed"
    cut = [p for p in report.problems if p.startswith(f"entry {anchored}: named by the anchor")]
    assert cut and "the log ends at entry" in cut[0]


def test_a_deleted_anchor_file_is_named_not_read_as_no_anchors(world: Runtime) -> None:
    run_checks(world, "low-model-0")
    assert world.settings.evidence_anchor_file is not None
    world.settings.evidence_anchor_file.unlink()
    report = verify(world)
    assert not report.ok
    assert "is gone from it: anchors were deleted" in str(report.first_broken)


def test_entries_left_unanchored_too_long_fail_verify(world: Runtime) -> None:
    run_checks(world, "low-model-0")
    world.store.record_event("note", "evidence", "n", None, {"by": "a writer with no hook"})
    clock_of(world).advance(timedelta(hours=7))
    report = verify(world)
    assert not report.ok and "not anchored in file" in str(report.first_broken)
    anchor_if_due(world)  # the next run or tick anchors again
    assert verify(world).ok


def test_an_honest_purge_is_signed_anchored_and_verifies(world: Runtime) -> None:
    run_checks(world, "low-model-0")
    clock_of(world).set(START + timedelta(days=200))
    run_checks(world, "high-model-0")
    store = world.store
    assert isinstance(store, SqlEvidenceStore)
    held = FileAnchors(world.settings.evidence_anchor_file).read_anchors()  # type: ignore[arg-type]
    report = store.purge(START + timedelta(days=1), retention_days=183, by="risk", anchors=held)
    assert report.events_deleted > 0 and report.anchor is not None and report.keys
    assert report.anchor["seq"] >= report.through_seq
    verified = verify(world)
    assert verified.ok, verified.problems
    assert verified.signing.state == "signed"


def test_a_purge_without_an_anchor_is_refused(world: Runtime) -> None:
    store = world.store
    assert isinstance(store, SqlEvidenceStore)
    store.record_event("note", "evidence", "n", None, {"n": 1})
    clock_of(world).set(START + timedelta(days=200))
    store.record_event("note", "evidence", "n", None, {"n": 2})
    with pytest.raises(Exception, match="no anchor outside the database covers them"):
        store.purge(START + timedelta(days=1), retention_days=183, by="risk", anchors=[])


def test_a_purge_with_the_retention_check_removed_is_caught(
    world: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack of issue 16: the operator runs the purge code with the check taken out."""
    from prodcontrol.adapters.store import purge

    run_checks(world, "low-model-0")
    run_checks(world, "high-model-0")
    clock_of(world).advance(timedelta(hours=2))
    anchor_if_due(world)
    held = FileAnchors(world.settings.evidence_anchor_file).read_anchors()  # type: ignore[arg-type]
    monkeypatch.setattr(purge, "check_purge_allowed", lambda *a: None)
    sql(world.store.url, "DELETE FROM pc_head_signatures")  # so a keyless process may write
    forger = SqlEvidenceStore(world.store.url, clock=world.clock)
    done = forger.purge(world.clock.now(), retention_days=183, by="mallory", anchors=held)
    forger.close()
    assert done.events_deleted > 0
    report = verify(world)
    assert not report.ok
    problems = " ".join(report.problems)
    assert "inside the retention period of 183 days" in problems
    assert "its commit is not signed: the purge was written without the key" in problems
