"""Register the example models in an MLflow store, so ``prodcontrol check`` has something to read.

For every model of the inventory in ``pilot`` or ``production`` that names a baseline metric,
:func:`seed_mlflow` creates a training experiment with three runs and registers three versions:

* version 1: approved long ago (tag ``prodcontrol.approved=true``), the rollback target;
* version 2: approved three days ago and serving (alias ``champion``, or the model's
  ``serving_alias``). Its run logged the baseline metric at approval and, one hour ago, the value
  measured in production (step 1), so the performance control compares the two;
* version 3: a newer candidate (alias ``challenger``), not approved.

The production values are chosen so the example tiers give the story the demo tells:
``churn-classifier`` holds its metric (pass), ``credit-limit-regressor`` loses about 2.5 % (warn
on the medium tier), ``fraud-detector`` loses about 8 % (fail on the high tier). Other models get
a 1 % drop. The use case's KPI (``use_case.expected_value.metric_key``) is logged on the serving
run too, and the reference and current data are logged as run inputs (``mlflow.log_input``).

Seeding is idempotent: a model whose serving alias already exists is left as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.adapters.mlflow import (
    APPROVED_AT_TAG,
    APPROVED_TAG,
    MlflowAdapter,
    artifact_location,
)
from prodcontrol.catalog.config import Config
from prodcontrol.catalog.schema import FileSource, ModelEntry
from prodcontrol.catalog.types import CONTROLLED_STAGES
from prodcontrol.errors import UsageError

PRODUCTION_DROP = {
    "churn-classifier": 0.0,
    "credit-limit-regressor": 0.025,
    "fraud-detector": 0.08,
}
"""Relative drop of the baseline metric in production, per example model (default 1 %)."""
KPI_SHARE = {"churn-classifier": 1.05, "credit-limit-regressor": 0.97, "fraud-detector": 0.7}
"""The KPI logged in production as a share of the use case's target (default 1.0)."""
APPROVED_VALUE = 0.8
CHALLENGER_ALIAS = "challenger"


class SeededModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    created: bool = Field(description="False when the serving alias existed already")
    serving_version: str
    approved_versions: list[str]
    metric: str
    approved_value: float | None = None
    production_value: float | None = None


class SeedReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tracking_uri: str
    models: list[SeededModel]


def seed_mlflow(
    tracking_uri: str,
    config: Config,
    *,
    data_dir: Path | None = None,
    now: datetime | None = None,
    log_datasets: bool = True,
) -> SeedReport:
    """Register the inventory's controlled models in MLflow at ``tracking_uri`` (see module doc).

    ``data_dir`` resolves relative data paths (default: the inventory directory).
    """
    adapter = MlflowAdapter(tracking_uri)
    base = data_dir or config.inventory.directory
    when = now or datetime.now(UTC)
    seeded = [
        _seed_model(adapter, model, base, when, log_datasets)
        for model in config.inventory.models.values()
        if model.stage in CONTROLLED_STAGES and model.baseline is not None
    ]
    return SeedReport(tracking_uri=tracking_uri, models=seeded)


def _seed_model(
    adapter: MlflowAdapter, model: ModelEntry, base: Path, now: datetime, log_datasets: bool
) -> SeededModel:
    assert model.baseline is not None
    metric = model.baseline.metric
    try:
        serving = adapter.resolve_alias(model.name, model.serving_alias)
    except UsageError:
        serving = None
    if serving is not None:
        approved = [v.version for v in adapter.list_versions(model.name) if _approved(v.tags)]
        return SeededModel(
            model=model.name,
            created=False,
            serving_version=serving.version,
            approved_versions=approved,
            metric=metric,
        )
    with adapter.translate_errors(f"seed model '{model.name}'"):
        return _register(adapter.client, model, metric, base, now, log_datasets=log_datasets)


def _approved(tags: dict[str, str]) -> bool:
    return tags.get(APPROVED_TAG) == "true"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _register(
    client: Any, model: ModelEntry, metric: str, base: Path, now: datetime, *, log_datasets: bool
) -> SeededModel:
    experiment = _experiment(client, f"{model.name}-training")
    drop = PRODUCTION_DROP.get(model.name, 0.01)
    approved_at = now - timedelta(days=3)
    values = {"1": APPROVED_VALUE - 0.04, "2": APPROVED_VALUE, "3": APPROVED_VALUE + 0.01}
    production = round(APPROVED_VALUE * (1 - drop), 6)
    _ensure_registered(client, model)
    versions: dict[str, str] = {}
    for number, value in values.items():
        trained = approved_at - timedelta(days=30 * (2 - int(number)) + 1)
        run = client.create_run(
            experiment,
            start_time=_ms(trained),
            tags={"mlflow.runName": f"{model.name}-train-v{number}"},
        )
        run_id = run.info.run_id
        client.log_param(run_id, "model_family", "gradient_boosting")
        client.log_param(run_id, "candidate", number)
        client.log_metric(run_id, metric, value, timestamp=_ms(trained), step=0)
        client.log_metric(run_id, "training_rows", 3000.0, timestamp=_ms(trained), step=0)
        if number == "2":
            client.log_metric(
                run_id, metric, production, timestamp=_ms(now - timedelta(hours=1)), step=1
            )
            _log_kpi(client, run_id, model, now)
            if log_datasets:
                _log_inputs(client, run_id, model, base)
        client.set_terminated(run_id, "FINISHED", end_time=_ms(trained + timedelta(minutes=20)))
        version = client.create_model_version(
            model.name, source=f"runs:/{run_id}/model", run_id=run_id
        )
        versions[number] = str(version.version)
    for number, at in (("1", approved_at - timedelta(days=60)), ("2", approved_at)):
        client.set_model_version_tag(model.name, versions[number], APPROVED_TAG, "true")
        client.set_model_version_tag(model.name, versions[number], APPROVED_AT_TAG, at.isoformat())
    client.set_registered_model_alias(model.name, model.serving_alias, versions["2"])
    client.set_registered_model_alias(model.name, CHALLENGER_ALIAS, versions["3"])
    return SeededModel(
        model=model.name,
        created=True,
        serving_version=versions["2"],
        approved_versions=[versions["1"], versions["2"]],
        metric=metric,
        approved_value=APPROVED_VALUE,
        production_value=production,
    )


def _experiment(client: Any, name: str) -> str:
    found = client.get_experiment_by_name(name)
    if found:
        return str(found.experiment_id)
    where = artifact_location(client.tracking_uri, name)
    return str(client.create_experiment(name, artifact_location=where))


def _ensure_registered(client: Any, model: ModelEntry) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(model.name)
    except MlflowException:
        client.create_registered_model(
            model.name,
            tags={"prodcontrol.tier": model.tier, "prodcontrol.stage": model.stage},
            description=model.description,
        )


def _log_kpi(client: Any, run_id: str, model: ModelEntry, now: datetime) -> None:
    use_case = getattr(model, "use_case", None)
    if use_case is None:
        return
    expected = use_case.expected_value
    share = KPI_SHARE.get(model.name, 1.0)
    for day in range(7):
        at = now - timedelta(days=day, hours=2)
        value = expected.target * share if expected.higher_is_better else expected.target / share
        client.log_metric(run_id, expected.metric_key, round(value, 6), timestamp=_ms(at), step=day)


def _log_inputs(client: Any, run_id: str, model: ModelEntry, base: Path) -> None:
    """The reference and current data as run inputs, so MLflow's UI lists them."""
    import pandas as pd
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    if model.data is None:
        return
    inputs = []
    for context in ("reference", "current"):
        spec = getattr(model.data, context)
        if not isinstance(spec, FileSource):
            continue
        path = Path(spec.path) if Path(spec.path).is_absolute() else (base / spec.path).resolve()
        if not path.is_file():
            continue
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        dataset = from_pandas(frame, source=str(path), name=f"{model.name}-{context}")
        tags = [InputTag(key="mlflow.data.context", value=context)]
        # the client API takes entities; the public fluent mlflow.log_input needs an active run
        inputs.append(DatasetInput(dataset=dataset._to_mlflow_entity(), tags=tags))
    if inputs:
        client.log_inputs(run_id, datasets=inputs)
