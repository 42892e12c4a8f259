"""The check runner end to end: real MLflow server, real files, real Evidently, SQLite evidence.

Models are registered with ``seed_mlflow`` (aliases, approved versions, runs with the baseline
metric) or by hand where a test needs MLflow-held data; then ``run_checks`` runs their tier's
controls and the evidence store is read back.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer

from prodcontrol.adapters.mlflow import MlflowAdapter
from prodcontrol.catalog.validate import load_config
from prodcontrol.control.runs.checks import CheckResult, measure_control, open_run, run_checks
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing.seed import seed_mlflow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CATALOG = ROOT / "control_catalog"
OWNERS = {
    "business_outcome": "amara",
    "data_domain": "farah",
    "model_behaviour": "chen",
    "workflow_impact": "bruno",
    "operating_risk": "dana",
}


def runtime(tmp_path: Path, inventory: Path, uri: str) -> Runtime:
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inventory,
        catalog_dir=CATALOG,
        mlflow_tracking_uri=uri,
    )
    return Runtime(settings)


def model_entry(name: str, tier: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "tier": tier,
        "stage": "production",
        "owners": OWNERS,
        "data": {"prediction_column": "prediction", **data},
        "baseline": {"metric": "average_precision"},
        "last_review": (datetime.now(UTC).date() - timedelta(days=10)).isoformat(),
        "use_case": {
            "purpose": "test",
            "expected_value": {
                "kpi": "k",
                "metric_key": "kpi",
                "target": 1.0,
                "review_date": "2027-01-01",
            },
            "data_used": ["test data"],
            "tier_requested": tier,
        },
    }


def write_inventory(directory: Path, models: list[dict[str, Any]]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "people.yaml", directory / "people.yaml")
    (directory / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return directory


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def by_control(result: CheckResult) -> dict[str, Any]:
    return {v.control: v for v in result.verdicts}


def assert_recorded(rt: Runtime, result: CheckResult) -> None:
    """Every verdict, finding and artifact is in the store, the chain verifies, hashes match."""
    assert rt.store.verify().ok
    stored = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    assert set(stored) == {v.control for v in result.verdicts}
    for artifact in rt.store.artifacts_for(result.run_id):
        assert artifact.sha256 == sha256(artifact.path)
    findings = {f.control_id: f for f in rt.store.list_findings(model=result.model)}
    for verdict in result.verdicts:
        assert (verdict.control in findings) == (verdict.verdict not in ("pass", "not_applicable"))


# --------------------------------------------------------------------------- the examples


def test_example_inventory_gives_pass_warn_fail(seeded_mlflow: str, tmp_path: Path) -> None:
    rt = runtime(tmp_path, EXAMPLES, seeded_mlflow)
    churn = run_checks(rt, "churn-classifier")
    assert (churn.verdict, churn.exit_code, churn.findings) == ("pass", 0, [])
    assert churn.mlflow_run_id and churn.version == "2"

    credit = run_checks(rt, "credit-limit-regressor")
    assert (credit.verdict, credit.exit_code, credit.blocking) == ("warn", 0, False)
    performance = by_control(credit)["performance-vs-baseline"]
    assert performance.verdict == "warn" and performance.value == pytest.approx(0.025)

    fraud = run_checks(rt, "fraud-detector")
    assert (fraud.verdict, fraud.exit_code, fraud.blocking) == ("fail", 1, True)
    verdicts = by_control(fraud)
    assert verdicts["dataset-drift"].verdict == "fail"
    assert verdicts["performance-vs-baseline"].verdict == "fail"
    assert verdicts["dataset-drift"].artifact.endswith(".evidently.snapshot.json.gz")
    for result in (churn, credit, fraud):
        assert_recorded(rt, result)

    # one report per run (issue 19): the results JSON and the full snapshot (the web page
    # renders its HTML on demand), explaining every data control the run measured
    files = rt.store.artifacts_for(fraud.run_id)
    assert sorted(a.name for a in files) == [
        "run-report.evidently.json",
        "run-report.evidently.snapshot.json.gz",
    ]
    data_rows = [v for v in fraud.verdicts if v.kind in ("drift", "data_quality")]
    assert len(data_rows) >= 4
    assert {v.artifact for v in data_rows if v.verdict != "error"} == {
        next(a.path for a in files if a.name.endswith(".snapshot.json.gz"))
    }

    # the result is in MLflow too: a run in prodcontrol-controls and tags on the version
    version = MlflowAdapter(seeded_mlflow).get_version("fraud-detector", fraud.version)
    assert version.tags["prodcontrol.last_verdict"] == "fail"
    assert version.tags["prodcontrol.last_run_id"] == fraud.run_id
    run = MlflowAdapter(seeded_mlflow).client.get_run(fraud.mlflow_run_id)
    assert run.data.metrics["verdict.dataset-drift"] == 2.0
    assert run.data.params["sample.seed"] == "7"
    logged = MlflowAdapter(seeded_mlflow).client.list_artifacts(fraud.mlflow_run_id, "controls")
    assert [a.path for a in logged] == ["controls/run-report"]
    inside = MlflowAdapter(seeded_mlflow).client.list_artifacts(
        fraud.mlflow_run_id, "controls/run-report"
    )
    assert sorted(a.path.rsplit("/", 1)[-1] for a in inside) == sorted(a.name for a in files)


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_world(
    mlflow_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """One inventory of broken models, each registered in MLflow (names unique to this run)."""
    if not mlflow_server.running:
        mlflow_server.start()
    root = tmp_path_factory.mktemp("bad-inventory")
    data = root / "data"
    data.mkdir()
    reference = pd.read_csv(EXAMPLES / "data" / "fraud-reference.csv")
    current = pd.read_csv(EXAMPLES / "data" / "fraud-reference.csv").sample(frac=1, random_state=2)
    reference.to_csv(data / "reference.csv", index=False)
    current.drop(columns="prediction").to_csv(data / "no-prediction.csv", index=False)
    typed = current.copy()
    typed["amount"] = "EUR " + typed["amount"].astype(str)
    typed.to_csv(data / "typed.csv", index=False)
    stale = current.copy()
    stale["at"] = pd.Timestamp(datetime.now(UTC) - timedelta(days=10))
    stale.to_csv(data / "stale.csv", index=False)
    suffix = uuid.uuid4().hex[:6]
    names = {
        key: f"{key}-{suffix}"
        for key in ("missing-column", "type-change", "empty-window", "nowhere")
    }
    ref = {"type": "file", "path": "data/reference.csv"}
    models = [
        model_entry(
            names["missing-column"],
            "medium",
            {"reference": ref, "current": {"type": "file", "path": "data/no-prediction.csv"}},
        ),
        model_entry(
            names["type-change"],
            "medium",
            {"reference": ref, "current": {"type": "file", "path": "data/typed.csv"}},
        ),
        model_entry(
            names["empty-window"],
            "low",
            {
                "reference": ref,
                "current": {
                    "type": "file",
                    "path": "data/stale.csv",
                    "time_column": "at",
                    "window": "1d",
                },
            },
        ),
        model_entry(
            names["nowhere"],
            "high",
            {"reference": ref, "current": {"type": "file", "path": "data/reference.csv"}},
        ),
    ]
    inventory = write_inventory(root, models)
    seed_mlflow(mlflow_server.uri, load_config(CATALOG, inventory), log_datasets=False)
    MlflowAdapter(mlflow_server.uri).delete_alias(names["nowhere"], "champion")
    return inventory, names


BadCheck = Callable[[str], tuple[Runtime, CheckResult]]


@pytest.fixture
def check_bad(bad_world: tuple[Path, dict[str, str]], mlflow_uri: str, tmp_path: Path) -> BadCheck:
    inventory, names = bad_world

    def check(key: str) -> tuple[Runtime, CheckResult]:
        rt = runtime(tmp_path, inventory, mlflow_uri)
        result = run_checks(rt, names[key])
        assert_recorded(rt, result)
        return rt, result

    return check


def error_finding(rt: Runtime, result: CheckResult, control: str) -> Any:
    verdict = by_control(result)[control]
    assert verdict.verdict == "error"
    (finding,) = [f for f in result.findings if f.control == control]
    assert finding.verdict == "error" and finding.status == "open"
    stored = rt.store.get_finding(finding.id)
    assert stored.run_id == result.run_id
    return verdict


def test_missing_column_is_an_error_with_its_name(check_bad: BadCheck) -> None:
    rt, result = check_bad("missing-column")
    verdict = error_finding(rt, result, "prediction-drift")
    assert "'prediction'" in verdict.reason and "not in the current data" in verdict.reason
    assert by_control(result)["dq-schema"].verdict == "fail"  # one column gone
    assert result.exit_code == 1


def test_type_change_is_an_error_naming_the_column(check_bad: BadCheck) -> None:
    rt, result = check_bad("type-change")
    verdict = error_finding(rt, result, "dataset-drift")
    assert "amount" in verdict.reason
    assert by_control(result)["dq-schema"].verdict == "fail"


def test_empty_window_errors_every_data_control_without_blocking_a_low_tier(
    check_bad: BadCheck,
) -> None:
    rt, result = check_bad("empty-window")
    for control in ("dataset-drift", "dq-missing-share", "dq-schema"):
        verdict = error_finding(rt, result, control)
        assert "no rows in the window of the last 1d" in verdict.reason
    assert by_control(result)["ownership-readiness"].verdict == "pass"
    assert not result.blocking  # low tier: notify only, not fail-closed
    assert (result.status, result.exit_code) == ("error", 1)


def test_alias_pointing_nowhere_blocks_a_fail_closed_tier(check_bad: BadCheck) -> None:
    rt, result = check_bad("nowhere")
    assert result.version == "unresolved"
    verdict = error_finding(rt, result, "performance-vs-baseline")
    assert "points nowhere" in verdict.reason and "champion" in verdict.reason
    (finding,) = [f for f in result.findings if f.control == "performance-vs-baseline"]
    assert finding.blocking  # high tier fails closed
    assert by_control(result)["dataset-drift"].verdict == "pass"  # data controls still ran
    assert (result.blocking, result.exit_code) == (True, 1)
    run = rt.store.get_run(result.run_id)
    assert "champion" in run.sample["resolve_error"]


def test_same_idempotency_key_is_one_run(bad_world: Any, mlflow_uri: str, tmp_path: Path) -> None:
    inventory, names = bad_world
    rt = runtime(tmp_path, inventory, mlflow_uri)
    first = open_run(rt, names["nowhere"], trigger="test", idempotency_key="k-1")
    again = open_run(rt, names["nowhere"], trigger="test", idempotency_key="k-1")
    assert first.run_id == again.run_id and not again.already_finished
    outcome = measure_control(rt, first, "ownership-readiness")
    assert (outcome.value, outcome.error) == (0.0, None)


# --------------------------------------------------------------------------- sklearn data


def register_with_mlflow_data(
    uri: str, model: str, reference: pd.DataFrame, current: pd.DataFrame, folder: Path
) -> None:
    """A version whose run holds the reference as an artifact and the current data as input."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    client = MlflowAdapter(uri).client
    experiment = client.create_experiment(f"{model}-training")
    run_id = client.create_run(experiment).info.run_id
    folder.mkdir(parents=True)
    reference.to_parquet(folder / "reference.parquet")
    current.to_csv(folder / "current.csv", index=False)
    client.log_artifact(run_id, str(folder / "reference.parquet"), artifact_path="data")
    dataset = from_pandas(current, source=str(folder / "current.csv"), name="scoring")
    tags = [InputTag(key="mlflow.data.context", value="production")]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags)])
    client.set_terminated(run_id)
    client.create_registered_model(model)
    version = client.create_model_version(model, f"runs:/{run_id}/model", run_id=run_id)
    client.set_registered_model_alias(model, "champion", version.version)


def test_breast_cancer_split_and_shifted_through_mlflow_data(
    mlflow_uri: str, tmp_path: Path
) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, :10]  # the ten "mean ..." features
    shuffled = data.sample(frac=1.0, random_state=0).reset_index(drop=True)
    reference, current = shuffled.iloc[:280], shuffled.iloc[280:].reset_index(drop=True)
    shifted = current.copy()
    columns = list(shifted.columns[:7])  # 7 of 10 columns, scaled by 1.5
    shifted[columns] = shifted[columns] * 1.5
    suffix = uuid.uuid4().hex[:6]
    spec = {
        "reference": {"type": "mlflow_artifact", "artifact_path": "data/reference.parquet"},
        "current": {"type": "mlflow_dataset", "name": "scoring", "context": "production"},
    }
    models = []
    for label, frame in (("same", current), ("shifted", shifted)):
        name = f"cancer-{label}-{suffix}"
        register_with_mlflow_data(mlflow_uri, name, reference, frame, tmp_path / name)
        entry = model_entry(name, "low", spec)
        entry["data"].pop("prediction_column")
        models.append(entry)
    inventory = write_inventory(tmp_path / "inventory", models)
    rt = runtime(tmp_path, inventory, mlflow_uri)

    same = by_control(run_checks(rt, f"cancer-same-{suffix}"))["dataset-drift"]
    assert same.verdict == "pass", same.reason
    result = run_checks(rt, f"cancer-shifted-{suffix}")
    drift = by_control(result)["dataset-drift"]
    assert drift.verdict == "fail" and drift.value >= 0.5, drift.reason
    stored = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}["dataset-drift"]
    drifted = set(stored.details["drifted_columns"])
    assert drifted <= set(columns) and len(drifted) >= 6
    assert stored.details["sample"]["seed"] == 7
    assert_recorded(rt, result)
    assert np.isfinite(drift.value)
