"""MlflowAdapter against the real ``mlflow server``: what the contract tests cannot show.

The last test stops the server in the middle of a control run; the ``mlflow_uri`` fixture starts
it again for any test that runs later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodcontrol.adapters.mlflow import CONTROLS_EXPERIMENT, MlflowAdapter
from prodcontrol.control.runs.checks import close_run, measure_control, open_run
from prodcontrol.errors import UnreachableError
from prodcontrol.ports import ControlRunSummary, VerdictSummary
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APPROVED_AT = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def register(adapter: MlflowAdapter, model: str, tags: dict[str, str]) -> tuple[str, str]:
    """One version whose run logged auc 0.80 before approval and 0.70 after; returns ids."""
    client = adapter.client
    experiment = client.create_experiment(f"{model}-training")
    run_id: str = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "auc", 0.80, timestamp=ms(APPROVED_AT - timedelta(hours=1)), step=0)
    client.log_metric(run_id, "auc", 0.70, timestamp=ms(APPROVED_AT + timedelta(days=5)), step=1)
    client.create_registered_model(model)
    version = client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    adapter.set_version_tags(model, str(version.version), tags)
    adapter.set_alias(model, "champion", str(version.version))
    return str(version.version), run_id


def test_baseline_is_what_the_approvers_saw(mlflow_uri: str) -> None:
    adapter = MlflowAdapter(mlflow_uri)
    approved = f"approved-{uuid.uuid4().hex[:8]}"
    tags = {"prodcontrol.approved": "true", "prodcontrol.approved_at": APPROVED_AT.isoformat()}
    version, run_id = register(adapter, approved, tags)
    assert adapter.run_metrics(run_id) == {"auc": pytest.approx(0.70)}  # the newest value
    baseline = adapter.baseline(approved, "auc", "approved_version", "prodcontrol.approved")
    assert (baseline.version, baseline.metrics["auc"]) == (version, pytest.approx(0.80))
    history = adapter.metric_history(run_id, "auc")
    assert [p.value for p in history] == pytest.approx([0.80, 0.70])
    assert history[0].at == APPROVED_AT - timedelta(hours=1)

    tagged = f"tagged-{uuid.uuid4().hex[:8]}"
    register(adapter, tagged, {"prodcontrol.baseline": "true"})
    baseline = adapter.baseline(tagged, "auc", "tagged_version", "prodcontrol.baseline")
    assert baseline.metrics["auc"] == pytest.approx(0.70)  # no approval time: the run's value


def test_record_control_run_logs_a_run_with_artifacts_once(mlflow_uri: str, tmp_path: Path) -> None:
    adapter = MlflowAdapter(mlflow_uri)
    model = f"recorded-{uuid.uuid4().hex[:8]}"
    version, _ = register(adapter, model, {})
    report = tmp_path / "dataset-drift.evidently.html"
    report.write_text("<html>report</html>")
    summary = ControlRunSummary(
        run_id=str(uuid.uuid4()),
        model=model,
        version=version,
        tier="medium",
        trigger="test",
        status="failed",
        verdict="fail",
        started_at=APPROVED_AT,
        finished_at=APPROVED_AT + timedelta(seconds=5),
        verdicts=[
            VerdictSummary(control_id="dataset-drift", verdict="fail", value=0.6, fail=0.5),
            VerdictSummary(control_id="performance-vs-baseline", verdict="error"),
        ],
        artifacts={"dataset-drift": [str(report)]},
        sample={"seed": 7, "max_rows": 200000},
    )
    first = adapter.record_control_run(summary)
    assert adapter.record_control_run(summary) == first  # a retried write-back reuses the run
    run = adapter.client.get_run(first)
    experiment = adapter.client.get_experiment(run.info.experiment_id)
    assert experiment.name == CONTROLS_EXPERIMENT
    assert run.info.status == "FINISHED"
    assert run.data.metrics == {
        "verdict": 2.0,
        "verdict.dataset-drift": 2.0,
        "value.dataset-drift": pytest.approx(0.6),
        "verdict.performance-vs-baseline": 3.0,
    }
    assert run.data.params["sample.seed"] == "7"
    assert run.data.tags["prodcontrol.run_id"] == summary.run_id
    (artifact,) = adapter.client.list_artifacts(first, "controls/dataset-drift")
    assert artifact.path == "controls/dataset-drift/dataset-drift.evidently.html"
    tags = adapter.get_version(model, version).tags
    assert tags["prodcontrol.last_verdict"] == "fail"


def inventory_with(model: str, directory: Path) -> Path:
    data = ROOT / "examples" / "data"
    entry: dict[str, Any] = {
        "name": model,
        "tier": "medium",
        "stage": "production",
        "owners": {
            "business_outcome": "hana",
            "data_domain": "farah",
            "model_behaviour": "emeka",
            "workflow_impact": "emeka",
            "operating_risk": "dana",
        },
        "data": {
            "reference": {"type": "file", "path": str(data / "credit-reference.csv")},
            "current": {"type": "file", "path": str(data / "credit-reference.csv")},
            "prediction_column": "prediction",
        },
        "baseline": {"metric": "auc"},
        "last_review": datetime.now(UTC).date().isoformat(),
        "use_case": {
            "purpose": "test",
            "expected_value": {
                "kpi": "k",
                "metric_key": "kpi",
                "target": 1.0,
                "review_date": "2027-01-01",
            },
            "data_used": ["test"],
            "tier_requested": "medium",
        },
    }
    directory.mkdir()
    (directory / "models.yaml").write_text(yaml.safe_dump({"models": [entry]}))
    (directory / "people.yaml").write_text((ROOT / "examples" / "people.yaml").read_text())
    return directory


def test_mlflow_stopped_mid_run_gives_error_verdicts_and_exit_3(
    mlflow_server: Any, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # keep the retries, skip sleeps
    adapter = MlflowAdapter(mlflow_uri)
    model = f"midrun-{uuid.uuid4().hex[:8]}"
    register(adapter, model, {"prodcontrol.approved": "true"})
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inventory_with(model, tmp_path / "inventory"),
        catalog_dir=ROOT / "control_catalog",
        mlflow_tracking_uri=mlflow_uri,
    )
    rt = Runtime(settings)
    ctx = open_run(rt, model, trigger="test")
    assert ctx.version is not None and ctx.version.version == "1"

    mlflow_server.stop()
    outcomes = [measure_control(rt, ctx, control_id) for control_id in ctx.control_ids]
    result = close_run(rt, ctx, outcomes)

    verdicts = {v.control: v for v in result.verdicts}
    performance = verdicts["performance-vs-baseline"]
    assert performance.verdict == "error"
    assert f"MLflow at {mlflow_uri} is unreachable" in performance.reason
    assert verdicts["dataset-drift"].verdict == "pass"  # file data does not need MLflow
    assert (result.unreachable, result.exit_code, result.status) == (True, 3, "error")
    assert result.writeback_error and "unreachable" in result.writeback_error
    (finding,) = [f for f in result.findings if f.control == "performance-vs-baseline"]
    # medium gates open on fail only: an error escalates but never waits on a gate that a
    # timeout could accept (issue 14)
    assert finding.verdict == "error" and not finding.blocking
    events = [e for e in rt.store.events() if e.kind == "mlflow_writeback_failed"]
    assert len(events) == 1 and events[0].subject_id == result.run_id

    # a run that starts while MLflow is down is still recorded, as unresolved
    again = open_run(rt, model, trigger="test")
    assert again.version is None and again.resolve_unreachable
    outcome = measure_control(rt, again, "performance-vs-baseline")
    assert outcome.unreachable and "unreachable" in (outcome.error or "")
    with pytest.raises(UnreachableError):
        adapter.list_versions(model)
