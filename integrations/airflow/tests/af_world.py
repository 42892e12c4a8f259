"""Test helpers: seed the real MLflow server with the example models, build runtimes."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mlflow import MlflowClient
from prodcontrol.clock import Clock
from prodcontrol.evidence.records import Finding, FindingIn, VerdictIn
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings

METRICS = {"churn-classifier": "roc_auc", "credit-limit-regressor": "r2", "fraud-detector": "auc"}
# each use case's KPI (examples/models.yaml), at a value that meets its target
KPIS = {
    "churn-classifier": ("retained_per_1k", 45.0),
    "credit-limit-regressor": ("net_revenue_per_card", 125.0),
    "fraud-detector": ("fraud_value_caught_share", 0.65),
}


def seed_model(tracking_uri: str, model: str) -> MlflowClient:
    """Versions 1 (approved) and 2 (serving as ``champion``), each from a run with metrics.

    Seeding a model already there puts ``champion`` back on version 2 (a test before may have
    rolled it back).
    """
    client = MlflowClient(tracking_uri)
    if client.search_registered_models(filter_string=f"name = '{model}'"):
        client.set_registered_model_alias(model, "champion", "2")
        return client
    experiment = client.get_experiment_by_name("training")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("training")
    client.create_registered_model(model)
    for version, score in (("1", 0.91), ("2", 0.90)):
        run = client.create_run(experiment_id, run_name=f"{model}-v{version}")
        for key in set(METRICS.values()):
            client.log_metric(run.info.run_id, key, score)
        client.log_metric(run.info.run_id, *KPIS[model])
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "MLmodel").write_text("flavors: {}\n")
            client.log_artifacts(run.info.run_id, tmp, "model")
        client.set_terminated(run.info.run_id)
        made = client.create_model_version(
            model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        assert made.version == version
    client.set_model_version_tag(model, "1", "prodcontrol.approved", "true")
    client.set_model_version_tag(model, "1", "prodcontrol.baseline", "true")
    client.set_registered_model_alias(model, "champion", "2")
    return client


def runtime(clock: Clock | None = None) -> Runtime:
    """What the operators see: conftest's environment, MLflow from the Airflow connection."""
    tracking_uri = os.environ.get("AIRFLOW_CONN_PRODCONTROL_MLFLOW")
    return Runtime(load_settings(mlflow_tracking_uri=tracking_uri), clock)


def record_finding(rt: Runtime, model: str, verdict: str = "fail") -> Finding:
    """A finished control run with one finding on ``dataset-drift`` (what a check records)."""
    entry = rt.config.model(model)
    run = rt.store.start_run(model, "2", entry.tier, "airflow")
    rt.store.finish_run(
        run.id,
        "failed",
        [
            VerdictIn(
                control_id="dataset-drift",
                kind="drift",
                verdict=verdict,  # type: ignore[arg-type]
                value=0.6,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason="6 of 10 columns drifted",
            )
        ],
        [],
        [FindingIn(control_id="dataset-drift", severity="high", blocking=True)],
    )
    return next(f for f in rt.store.list_findings(model=model) if f.run_id == run.id)


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)
