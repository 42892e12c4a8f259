"""A team's own first model, as the README's "Put your first model under control" tells it.

A second inventory is built here, not taken from ``examples/``: a scikit-learn classifier trained
on a dataset shipped with scikit-learn (breast cancer, numeric features only), Parquet reference
and current data with a prediction and a target column, its own MLflow store (a local SQLite
file, prodcontrol's embedded default), the high tier and the bundled catalog. ``validate`` and
``check`` run through the CLI as a user runs them.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from prodcontrol.cli import output
from prodcontrol.cli.app import run

ROOT = Path(__file__).resolve().parents[2]
FEATURES = [
    "mean radius",
    "mean texture",
    "mean smoothness",
    "mean compactness",
    "mean symmetry",
    "mean fractal dimension",
]
OWNERS = {
    "business_outcome": "amara",
    "data_domain": "farah",
    "model_behaviour": "chen",
    "workflow_impact": "bruno",
    "operating_risk": "dana",
}


def _train(folder: Path) -> float:
    """Fit the model, write reference/current Parquet with prediction and target; its AUC."""
    data = load_breast_cancer(as_frame=True).frame
    reference, current = train_test_split(
        data, test_size=0.4, stratify=data["target"], random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(reference[FEATURES], reference["target"])
    for name, frame in (("reference", reference), ("current", current)):
        table = frame[[*FEATURES, "target"]].copy()
        table["prediction"] = model.predict_proba(frame[FEATURES])[:, 1]
        table.to_parquet(folder / f"{name}.parquet", index=False)
    scores = model.predict_proba(current[FEATURES])[:, 1]
    return float(roc_auc_score(current["target"], scores))


def _log_datasets(client: Any, run_id: str, folder: Path) -> None:
    """The training and scoring data as run inputs, as ``mlflow.log_input`` records them."""
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    inputs = []
    for name, context in (("reference", "training"), ("current", "production")):
        path = folder / f"{name}.parquet"
        dataset = from_pandas(pd.read_parquet(path), source=str(path), name=f"biopsy-{name}")
        tags = [InputTag(key="mlflow.data.context", value=context)]
        inputs.append(DatasetInput(dataset._to_mlflow_entity(), tags))
    client.log_inputs(run_id, datasets=inputs)


def _register(uri: str, name: str, auc: float, folder: Path) -> None:
    """The MLflow contract: a version whose run logs the baseline metric and the KPI, tagged
    ``prodcontrol.approved=true``, with the serving alias on it."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment(f"{name}-training")
    run_id = client.create_run(experiment).info.run_id
    client.log_metric(run_id, "roc_auc", auc)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    for day in range(3):
        client.log_metric(run_id, "cases_caught_share", 0.93, timestamp=now_ms - day * 86_400_000)
    _log_datasets(client, run_id, folder)
    client.set_terminated(run_id)
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.set_model_version_tag(name, version.version, "prodcontrol.approved", "true")
    client.set_registered_model_alias(name, "champion", version.version)


def _entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "tier": "high",
        "stage": "production",
        "serving_alias": "champion",
        "owners": OWNERS,
        "data": {
            "reference": {"type": "file", "path": "data/reference.parquet"},
            "current": {"type": "file", "path": "data/current.parquet"},
            "prediction_column": "prediction",
            "target_column": "target",
            "numerical": FEATURES,
        },
        "baseline": {"metric": "roc_auc"},
        "last_review": (datetime.now(UTC).date() - timedelta(days=5)).isoformat(),
        "use_case": {
            "purpose": "Flag suspicious biopsies for a second reading.",
            "expected_value": {
                "kpi": "share of malignant cases flagged",
                "metric_key": "cases_caught_share",
                "target": 0.9,
                "review_date": "2027-06-30",
            },
            "data_used": ["biopsy measurements"],
            "tier_requested": "high",
        },
    }


@pytest.fixture
def first_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh project: inventory/ with the team's own model, prodcontrol.toml, its own MLflow."""
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    inventory = tmp_path / "inventory"
    (inventory / "data").mkdir(parents=True)
    auc = _train(inventory / "data")
    (inventory / "people.yaml").write_text((ROOT / "examples" / "people.yaml").read_text())
    models = {"models": [_entry("biopsy-classifier")]}
    (inventory / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (tmp_path / "prodcontrol.toml").write_text(
        f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{inventory}"\n'
        f'mlflow_tracking_uri = "{uri}"\n'
    )
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(tmp_path / "prodcontrol.toml"))
    monkeypatch.setattr(output.console, "_width", 200)
    _register(uri, "biopsy-classifier", auc, inventory / "data")
    return tmp_path


def test_own_numeric_model_runs_the_bundled_catalog_without_error(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = run(["check", "biopsy-classifier", "--json"])
    result = json.loads(capsys.readouterr().out)
    verdicts = {v["control"]: v for v in result["verdicts"]}
    errors = {c: v["reason"] for c, v in verdicts.items() if v["verdict"] == "error"}
    assert errors == {}
    assert code == 0 == result["exit_code"], verdicts
    unseen = verdicts["dq-unseen-categories"]
    assert unseen["verdict"] == "not_applicable" and unseen["value"] is None
    assert "no categorical feature" in unseen["reason"]
    assert verdicts["dq-out-of-range"]["verdict"] in ("pass", "warn")


def test_declared_features_are_the_drift_contract(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Drift looks at the six declared features: never the target, never the prediction, never
    the undeclared columns of the file."""
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import Settings

    run(["check", "biopsy-classifier", "--json"])
    result = json.loads(capsys.readouterr().out)
    store = Runtime(Settings()).store
    stored = {v.control_id: v for v in store.verdicts_for(result["run_id"])}
    drift = stored["dataset-drift"].details
    assert list(drift["columns"]) == FEATURES and drift["n_columns"] == len(FEATURES)
    assert drift["skipped_columns"] == {}
    prediction = stored["prediction-drift"].details["columns"]["prediction"]
    assert prediction["score_kind"] == "distance" and prediction["method"] == "wasserstein"
    quality = stored["dq-missing-share"].details["columns"]
    assert list(quality) == FEATURES


def test_not_applicable_shows_in_the_cli_table(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["check", "biopsy-classifier"])
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "dq-unseen-categories" in line)
    assert "not applicable" in line and "error" not in line


def test_current_data_without_a_declared_feature_names_it(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A renamed column in the current data: the error names the declared column and where it
    is declared, and points at models.yaml, not at the pipeline."""
    current = first_model / "inventory" / "data" / "current.parquet"
    frame = pd.read_parquet(current).rename(columns={"mean texture": "texture"})
    frame.to_parquet(current, index=False)
    run(["check", "biopsy-classifier", "--json"])
    verdicts = {v["control"]: v for v in json.loads(capsys.readouterr().out)["verdicts"]}
    reason = verdicts["dataset-drift"]["reason"]
    assert verdicts["dataset-drift"]["verdict"] == "error"
    assert "'mean texture' (data.numerical)" in reason and "models.yaml" in reason


# --------------------------------------------------------------------------- init --from-mlflow


def test_init_scaffolds_an_entry_that_validate_flags_until_filled_in(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", "--from-mlflow", "biopsy-classifier", "--tier", "high"]) == 0
    entry = capsys.readouterr().out
    (scaffolded,) = yaml.safe_load("models:\n" + entry)["models"]
    assert scaffolded["name"] == "biopsy-classifier" and scaffolded["tier"] == "high"
    assert scaffolded["serving_alias"] == "champion"
    assert scaffolded["baseline"] == {"metric": "roc_auc"}
    data = scaffolded["data"]
    assert data["reference"] == {
        "type": "mlflow_dataset",
        "name": "biopsy-reference",
        "context": "training",
    }
    assert data["current"]["name"] == "biopsy-current"
    assert set(FEATURES) <= set(data["numerical"])
    assert "versions: 1 (champion, approved)" in entry

    fresh = first_model / "fresh"
    fresh.mkdir()
    (fresh / "people.yaml").write_text((ROOT / "examples" / "people.yaml").read_text())
    scaffold = ["init", "--from-mlflow", "biopsy-classifier", "--tier", "high", "--append"]
    code = run([*scaffold, "--inventory", str(fresh)])
    assert code == 0
    capsys.readouterr()
    assert run(["validate", "--inventory", str(fresh)]) == 2
    err = capsys.readouterr().err
    models = str(fresh / "models.yaml")
    flagged = [line for line in err.splitlines() if line.startswith(models + ":")]
    assert sum("'YYYY-MM-DD' is not a date" in line for line in flagged) == 2
    assert any("target: Input should be a valid number" in line for line in flagged)
    path = fresh / "models.yaml"
    text = path.read_text().replace("YYYY-MM-DD", "2026-11-30")
    path.write_text(text.replace("target: TODO", "target: 0.9"))
    assert run(["validate", "--inventory", str(fresh)]) == 2
    flagged = [line for line in capsys.readouterr().err.splitlines() if line.startswith(models)]
    assert sum("unknown person 'todo-" in line for line in flagged) == 5, flagged


def test_init_with_a_mistyped_model_or_tier(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", "--from-mlflow", "biopsy-clasifier", "--tier", "high"]) == 2
    assert "(did you mean 'biopsy-classifier'?)" in " ".join(capsys.readouterr().err.split())
    assert run(["init", "--from-mlflow", "biopsy-classifier", "--tier", "High"]) == 2
    assert "unknown tier 'High' (did you mean 'high'?)" in " ".join(capsys.readouterr().err.split())


def test_a_data_file_gone_at_run_time_is_an_error_not_an_outage(
    first_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not found is not unreachable: exit 1 (a control could not run), never 3, so no flow
    retries it as an outage; the reason says which path and what to check."""
    (first_model / "inventory" / "data" / "current.parquet").rename(
        first_model / "inventory" / "data" / "current-old.parquet"
    )
    code = run(["check", "biopsy-classifier", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 == result["exit_code"] and result["unreachable"] is False
    drift = {v["control"]: v for v in result["verdicts"]}["dataset-drift"]
    assert drift["verdict"] == "error" and "no such file" in drift["reason"]
    assert "data path 'data/current.parquet' in models.yaml" in drift["reason"]
