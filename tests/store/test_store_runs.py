"""Runs with their verdicts, artifacts, findings and messages: one transaction, all or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from store_helpers import artifact, finished_run, message, verdict

from prodcontrol.errors import StoreConflict, UsageError
from prodcontrol.evidence import FindingIn, RecordNotFound, chain
from prodcontrol.evidence.port import EvidenceStore


def test_run_lifecycle_writes_everything_and_logs_every_row(store: EvidenceStore) -> None:
    run = finished_run(store)
    assert run.status == "failed" and run.finished_at is not None
    assert store.get_run(run.id) == run

    verdicts = store.verdicts_for(run.id)
    assert [(v.control_id, v.verdict) for v in verdicts] == [
        ("drift_psi", "fail"),
        ("quality_nulls", "pass"),
    ]
    assert verdicts[0].details == {"columns": ["a", "b"], "share": 0.5}

    drift = verdicts[0]
    artifacts = {a.name: a for a in store.artifacts_for(run.id)}
    assert artifacts["drift.json"].verdict_id == drift.id
    assert artifacts["summary.html"].verdict_id is None

    [finding] = store.list_findings(model="credit-risk")
    assert (finding.verdict_id, finding.verdict, finding.status) == (drift.id, "fail", "open")
    assert finding.model_version == "7" and finding.blocking

    [note] = store.list_notifications(status="pending")
    assert note.finding_id == finding.id and note.attempts == 0

    kinds = [e.kind for e in store.events()]
    assert kinds == [
        "run.started",
        "verdict.recorded",
        "verdict.recorded",
        "artifact.recorded",
        "artifact.recorded",
        "finding.opened",
        "notification.enqueued",
        "run.finished",
    ]
    assert store.events()[-1].payload["record"] == run.model_dump(mode="json")


def test_datetimes_come_back_aware_utc(store: EvidenceStore) -> None:
    run = finished_run(store)
    stored = store.get_run(run.id)
    assert stored.started_at.utcoffset() == timedelta(0)
    assert stored.finished_at is not None and stored.finished_at > stored.started_at


def test_a_failure_mid_transaction_leaves_nothing(store: EvidenceStore) -> None:
    run = store.start_run("credit-risk", "7", "high", "cli")
    head = store.chain_head()
    with pytest.raises(StoreConflict):
        store.finish_run(
            run.id,
            "failed",
            verdicts=[verdict("drift_psi", "fail", 0.5)],
            artifacts=[artifact("drift.json", "drift_psi")],
            findings=[FindingIn(control_id="drift_psi", severity="high", blocking=True)],
            # the database refuses this row (no such gate) after the others were written
            notifications=[message("m1", gate_id="no-such-gate")],
        )
    assert store.get_run(run.id).status == "running"
    assert store.verdicts_for(run.id) == []
    assert store.artifacts_for(run.id) == []
    assert store.list_findings() == [] and store.list_notifications() == []
    assert store.chain_head() == head and len(store.events()) == 1


def test_a_failure_while_logging_leaves_nothing(
    store: EvidenceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = store.start_run("credit-risk", "7", "high", "cli")
    real = chain.entry_hash  # both stores chain their entries through evidence.chain
    calls = []

    def failing_hash(*args: object) -> str:
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(chain, "entry_hash", failing_hash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.finish_run(run.id, "succeeded", [verdict("a"), verdict("b"), verdict("c")], [], [])
    monkeypatch.undo()
    assert store.verdicts_for(run.id) == [] and store.get_run(run.id).status == "running"
    assert store.verify().ok


def test_start_run_is_idempotent_on_its_key(store: EvidenceStore) -> None:
    first = store.start_run("credit-risk", "7", "high", "prefect", idempotency_key="flow-1")
    again = store.start_run("credit-risk", "7", "high", "prefect", idempotency_key="flow-1")
    assert again == first
    assert len(store.list_runs()) == 1 and len(store.events()) == 1
    with pytest.raises(StoreConflict, match="already belongs"):
        store.start_run("other-model", "1", "low", "cli", idempotency_key="flow-1")


def test_a_run_finishes_once(store: EvidenceStore) -> None:
    run = finished_run(store)
    with pytest.raises(StoreConflict, match="already finished"):
        store.finish_run(run.id, "succeeded", [], [], [])


def test_references_that_do_not_add_up_are_refused_before_writing(
    store: EvidenceStore,
) -> None:
    run = store.start_run("credit-risk", "7", "high", "cli")
    with pytest.raises(UsageError, match="no verdict"):
        store.finish_run(
            run.id,
            "failed",
            [verdict("a")],
            [artifact("x", "zzz")],
            [FindingIn(control_id="b", severity="low", blocking=False)],
        )
    with pytest.raises(UsageError, match="two verdicts"):
        store.finish_run(run.id, "failed", [verdict("a"), verdict("a")], [], [])
    with pytest.raises(UsageError, match="final status"):
        store.finish_run(run.id, "running", [], [], [])
    assert len(store.events()) == 1


def test_unknown_ids_raise_record_not_found(store: EvidenceStore) -> None:
    with pytest.raises(RecordNotFound, match="no run with id 'nope'"):
        store.get_run("nope")
    with pytest.raises(RecordNotFound):
        store.finish_run("nope", "succeeded", [], [], [])


def test_latest_verdicts_take_the_newest_run_per_control(store: EvidenceStore) -> None:
    older = store.start_run("m", "1", "low", "cli")
    store.finish_run(older.id, "failed", [verdict("a", "fail", 0.9), verdict("b")], [], [])
    newer = store.start_run("m", "2", "low", "cli")
    store.finish_run(newer.id, "succeeded", [verdict("a", "pass", 0.01)], [], [])
    other = store.start_run("other", "1", "low", "cli")
    store.finish_run(other.id, "succeeded", [verdict("a", "warn", 0.3)], [], [])

    latest = {v.control_id: (v.run_id, v.verdict) for v in store.latest_verdicts("m")}
    assert latest == {"a": (newer.id, "pass"), "b": (older.id, "pass")}


def test_list_runs_filters_by_model_and_time(store: EvidenceStore) -> None:
    runs = [store.start_run(model, "1", "low", "cli") for model in ("a", "b", "a")]
    assert [r.id for r in store.list_runs(model="a")] == [runs[0].id, runs[2].id]
    window = store.list_runs(since=runs[1].started_at, until=runs[2].started_at)
    assert [r.id for r in window] == [runs[1].id]


def test_set_finding_status_closes_and_reopens(store: EvidenceStore) -> None:
    finished_run(store)
    [finding] = store.list_findings()
    resolved = store.set_finding_status(finding.id, "resolved", "next run passed")
    assert resolved.status == "resolved" and resolved.closed_at is not None
    reopened = store.set_finding_status(finding.id, "open", "drift came back")
    assert reopened.closed_at is None
    assert store.events()[-1].payload["reason"] == "drift came back"


def test_nan_values_are_stored_as_missing(store: EvidenceStore) -> None:
    run = store.start_run("m", "1", "low", "cli")
    store.finish_run(run.id, "error", [verdict("a", "error", float("nan"))], [], [])
    [stored] = store.verdicts_for(run.id)
    assert stored.value is None


def test_every_backend_is_an_evidence_store(store: EvidenceStore) -> None:
    assert isinstance(store, EvidenceStore)
