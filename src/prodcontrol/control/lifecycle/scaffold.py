"""``prodcontrol init --from-mlflow NAME --tier T``: a models.yaml entry from what MLflow knows.

:func:`read_registered_model` (the only part that talks to MLflow) gathers the registered
model's versions, aliases, the serving version's logged metrics and dataset inputs;
:func:`render_entry` turns them into YAML with comments, so the user sees what was found and
what is left to fill in. Everything prodcontrol cannot know (owners, review date, use case) is
a placeholder that ``prodcontrol validate`` reports with ``file:line`` until it is replaced.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.types import OWNER_ROLES

APPROVED_TAG = "prodcontrol.approved"
PREFERRED_METRICS = (
    "roc_auc",
    "auc",
    "average_precision",
    "f1",
    "accuracy",
    "r2",
    "rmse",
    "mae",
    "log_loss",
)
"""Baseline metric chosen first when logged, in this order; otherwise the first logged."""
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse", "log_loss"})
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "int", "number"})
PLACEHOLDER_PERSON = "todo-{role}"
PLACEHOLDER_DATE = "YYYY-MM-DD"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoggedDataset(_Frozen):
    name: str
    context: str | None = None
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)


class VersionInfo(_Frozen):
    version: str
    aliases: list[str] = Field(default_factory=list)
    approved: bool = False
    run_id: str | None = None


class RegisteredModelInfo(_Frozen):
    """What MLflow knows about one registered model, as far as an inventory entry needs."""

    name: str
    description: str = ""
    versions: list[VersionInfo]
    serving_alias: str | None = None
    serving_version: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    datasets: list[LoggedDataset] = Field(default_factory=list)


def read_registered_model(tracking_uri: str, name: str) -> RegisteredModelInfo:
    """Read ``name`` from the MLflow registry; unknown model: UsageError naming the ones there."""
    from prodcontrol.adapters.mlflow import MlflowAdapter
    from prodcontrol.errors import UsageError

    adapter = MlflowAdapter(tracking_uri)
    client = adapter.client
    with adapter.translate_errors(f"registered model '{name}' in MLflow at {tracking_uri}"):
        known = [m.name for m in client.search_registered_models(max_results=200)]
        if name not in known:
            from prodcontrol.catalog.suggest import did_you_mean

            shown = ", ".join(sorted(known)[:20]) or "none"
            raise UsageError(
                f"MLflow at {tracking_uri} has no registered model '{name}'"
                f"{did_you_mean(name, known)}; registered models: {shown}"
            )
        registered = client.get_registered_model(name)
    versions = adapter.list_versions(name)
    infos = [
        VersionInfo(
            version=v.version,
            aliases=v.aliases,
            approved=v.tags.get(APPROVED_TAG) == "true",
            run_id=v.run_id,
        )
        for v in versions
    ]
    alias, serving = _serving(infos)
    run_id = next((v.run_id for v in infos if v.version == serving), None)
    metrics: dict[str, float] = {}
    datasets: list[LoggedDataset] = []
    if run_id:
        with adapter.translate_errors(f"run '{run_id}' of version {serving}"):
            run = client.get_run(run_id)
        metrics = {k: float(v) for k, v in run.data.metrics.items()}
        datasets = [_dataset(item) for item in (run.inputs.dataset_inputs if run.inputs else [])]
    return RegisteredModelInfo(
        name=name,
        description=registered.description or "",
        versions=infos,
        serving_alias=alias,
        serving_version=serving,
        metrics=metrics,
        datasets=datasets,
    )


def _serving(versions: list[VersionInfo]) -> tuple[str | None, str | None]:
    """``champion`` if set, else the first alias of the newest version with one, else none;
    without an alias the newest version (its run gives the metrics and datasets)."""
    for preferred in ("champion", "production", "prod"):
        for v in versions:
            if preferred in v.aliases:
                return preferred, v.version
    for v in reversed(versions):
        if v.aliases:
            return v.aliases[0], v.version
    return None, versions[-1].version if versions else None


def _dataset(item: Any) -> LoggedDataset:
    context = next((str(t.value) for t in item.tags or [] if t.key == "mlflow.data.context"), None)
    numerical: list[str] = []
    categorical: list[str] = []
    try:
        specs = json.loads(item.dataset.schema or "{}").get("mlflow_colspec", [])
    except (ValueError, AttributeError):
        specs = []
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, dict) or not spec.get("name"):
            continue
        kind = str(spec.get("type", "")).lower()
        (numerical if kind in NUMERIC_TYPES else categorical).append(str(spec["name"]))
    return LoggedDataset(
        name=item.dataset.name, context=context, numerical=numerical, categorical=categorical
    )


# --------------------------------------------------------------------------- rendering


def choose_baseline(metrics: dict[str, float]) -> str | None:
    for name in PREFERRED_METRICS:
        if name in metrics:
            return name
    return sorted(metrics)[0] if metrics else None


def _pick(datasets: list[LoggedDataset], words: tuple[str, ...]) -> LoggedDataset | None:
    for item in datasets:
        label = f"{item.context or ''} {item.name}".lower()
        if any(w in label for w in words):
            return item
    return None


def _source_lines(side: str, item: LoggedDataset | None) -> list[str]:
    if item is None:
        return [
            f"    {side}: {{type: file, path: data/{side}.parquet}}"
            f"  # TODO: where the {side} data is (file, sql, mlflow_artifact or mlflow_dataset)"
        ]
    context = f", context: {item.context}" if item.context else ""
    return [f"    {side}: {{type: mlflow_dataset, name: {item.name}{context}}}"]


def render_entry(info: RegisteredModelInfo, tier: str, *, today: date) -> str:
    """A ``models:`` list item for ``info`` in tier ``tier``, with comments on what was found."""
    lines = [f"  # scaffolded by `prodcontrol init --from-mlflow {info.name}` on {today}"]
    lines.append("  # versions: " + _versions_comment(info.versions))
    lines.append(f"  - name: {info.name}")
    if info.description:
        lines.append(f"    description: {json.dumps(info.description)}")
    lines.append(f"    tier: {tier}")
    lines.append("    stage: pilot  # pilot or production: the stages controls run on")
    if info.serving_alias:
        lines.append(
            f"    serving_alias: {info.serving_alias}  # points at version {info.serving_version}"
        )
    else:
        lines.append(
            "    serving_alias: champion  # TODO: no alias in MLflow yet; set it with "
            f"MlflowClient().set_registered_model_alias('{info.name}', 'champion', VERSION)"
        )
    lines.append("    owners:  # TODO: people.yaml ids; validate reports every todo-* left")
    lines += [
        f"      {role}: {PLACEHOLDER_PERSON.format(role=role.replace('_', '-'))}"
        for role in OWNER_ROLES
    ]
    lines += _data_lines(info)
    lines += _baseline_lines(info)
    lines.append(f"    last_review: {PLACEHOLDER_DATE}  # TODO: date of the last model review")
    lines += _use_case_lines(tier)
    return "\n".join(lines) + "\n"


def _versions_comment(versions: list[VersionInfo]) -> str:
    if not versions:
        return "none registered yet"
    parts = []
    for v in versions:
        marks = [*v.aliases, *(["approved"] if v.approved else [])]
        parts.append(f"{v.version}" + (f" ({', '.join(marks)})" if marks else ""))
    note = (
        ""
        if any(v.approved for v in versions)
        else (f"; none approved: tag the approved version {APPROVED_TAG}=true (the baseline)")
    )
    return ", ".join(parts) + note


def _data_lines(info: RegisteredModelInfo) -> list[str]:
    reference = _pick(info.datasets, ("reference", "train"))
    current = _pick(info.datasets, ("current", "production", "serving", "scoring", "eval"))
    lines = ["    data:"]
    if info.datasets:
        logged = ", ".join(f"{d.name} ({d.context or 'no context'})" for d in info.datasets)
        lines.append(f"      # datasets logged on the serving version's run: {logged}")
    lines += ["  " + line for line in _source_lines("reference", reference)]
    lines += ["  " + line for line in _source_lines("current", current)]
    lines.append(
        "      prediction_column: prediction  # TODO: the column holding the model's output"
    )
    lines.append("      # target_column: label  # the true outcome, when the data has it")
    schema = reference or current
    numerical = schema.numerical if schema else []
    categorical = schema.categorical if schema else []
    features = (
        "  # TODO: the model's input features"
        if not (numerical or categorical)
        else ("  # from the logged schema; remove the target and prediction columns")
    )
    lines.append(f"      numerical: [{', '.join(numerical)}]{features}")
    lines.append(f"      categorical: [{', '.join(categorical)}]")
    return lines


def _baseline_lines(info: RegisteredModelInfo) -> list[str]:
    metric = choose_baseline(info.metrics)
    logged = ", ".join(f"{k}={v:g}" for k, v in sorted(info.metrics.items())) or "none"
    if metric is None:
        return ["    baseline: {metric: TODO}  # no metric logged on the serving version's run"]
    note = (
        "; lower is better: set the performance control's higher_is_better: false"
        if (metric in LOWER_IS_BETTER)
        else ""
    )
    return [
        f"    baseline: {{metric: {metric}}}  # logged: {logged}{note}",
    ]


def _use_case_lines(tier: str) -> list[str]:
    return [
        "    use_case:  # TODO: approved before the model leaves experimentation",
        "      purpose: TODO what the model is for",
        "      expected_value:",
        "        kpi: TODO the business KPI",
        "        metric_key: TODO  # the MLflow metric the KPI is logged as, on the serving "
        "version's run",
        "        target: TODO  # the KPI's target value, a number",
        f"        review_date: {PLACEHOLDER_DATE}",
        "      data_used: [TODO]",
        f"      tier_requested: {tier}",
    ]
