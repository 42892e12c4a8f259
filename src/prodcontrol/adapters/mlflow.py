"""MLflow as the model registry and metric source, and where control results are written back.

Reads: the serving alias's version and run, the run's metrics and their history, the approved
baseline, every version with its aliases and tags. Writes: aliases and version tags (stages are
deprecated in MLflow 3 and never used), and, after each control run, a run in the
``prodcontrol-controls`` experiment (verdicts as metrics, Evidently reports as artifacts) plus
the version tags ``prodcontrol.last_verdict``, ``prodcontrol.last_run_at`` and
``prodcontrol.last_run_id``, so MLflow users see the state of a version where they already look.

The approved baseline
---------------------
``approved_version``: among the versions tagged ``prodcontrol.approved=true`` (the tag the caller
passes), the most recently approved one (tag ``prodcontrol.approved_at``, an ISO time; else the
highest version number) whose run has the metric. If ``prodcontrol.approved_at`` is set, each
metric is its last value logged at or before that time: the number the approvers saw.
``tagged_version``: the highest version tagged ``<tag>=true`` whose run has the metric.

Reaching the server
-------------------
MLflow retries a failed HTTP request 7 times with exponential backoff (minutes) by default, with
a 120 s timeout each. A control that cannot reach MLflow must say so in seconds, so this adapter
lowers the defaults (``MLFLOW_HTTP_REQUEST_MAX_RETRIES=2``, backoff factor 1, timeout 10 s)
unless the environment already sets them: a refused connection is reported after about 2 s, a
host that drops packets after at most about 32 s (three 10 s connect timeouts and the backoff).
Every connection failure becomes :class:`~prodcontrol.errors.UnreachableError`; a name, alias
or run that does not exist becomes :class:`~prodcontrol.errors.UsageError`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from prodcontrol.errors import UnreachableError, UsageError
from prodcontrol.ports import Baseline, ControlRunSummary, MetricPoint, ModelVersionRef

T = TypeVar("T")

CONTROLS_EXPERIMENT = "prodcontrol-controls"
APPROVED_TAG = "prodcontrol.approved"
APPROVED_AT_TAG = "prodcontrol.approved_at"
VERDICT_CODES = {"not_applicable": -1.0, "pass": 0.0, "warn": 1.0, "fail": 2.0, "error": 3.0}
"""Verdicts as numbers, so MLflow can chart them: higher is worse."""

HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # MLflow writes "View run ... at" to stdout when a run ends: that breaks `--json` output
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
_HINT = (
    "Check that the MLflow tracking server is running and that PRODCONTROL_MLFLOW_TRACKING_URI "
    "(or mlflow_tracking_uri in prodcontrol.toml) points at it"
)


def short_http_retries() -> None:
    """Make a down server show in seconds, and keep stdout ours; the environment's values win."""
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp / 1000, tz=UTC)


def _ms(timestamp: int | None) -> datetime | None:
    return None if timestamp is None else _at(timestamp)


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)


def artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Where a new experiment keeps its artifacts when the tracking store is a local file.

    MLflow's default for a ``sqlite:///`` store is ``./mlruns`` under whatever directory the
    command ran in; next to the database file (the state dir) is where users look for it.
    A server decides for itself (``None``).
    """
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.parent / "mlartifacts" / experiment).resolve().as_uri()


class MlflowAdapter:
    """:class:`~prodcontrol.ports.MetricSource` and :class:`~prodcontrol.ports.ModelRegistry`
    over ``mlflow.MlflowClient`` for any tracking URI (a server, or a local ``sqlite:///``)."""

    def __init__(self, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        short_http_retries()

    @cached_property
    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    # ------------------------------------------------------------------ errors

    @contextlib.contextmanager
    def translate_errors(self, what: str) -> Iterator[None]:
        """Turn MLflow's exceptions into ours: unreachable (exit 3) or not found (usage)."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            message = str(exc)
            if exc.error_code in _MISSING or "not found" in message.lower():
                raise UsageError(f"{what}: {_plain(message, exc.error_code)}") from None
            if "API request to" in message or exc.error_code == "TEMPORARILY_UNAVAILABLE":
                detail = _connection_detail(message)
                raise UnreachableError("MLflow", self.tracking_uri, detail, _HINT) from exc
            raise UsageError(f"{what}: MLflow refused the request: {message}") from exc
        except Exception as exc:
            if isinstance(exc, ConnectionError) or _is_connection_error(exc):
                detail = _connection_detail(str(exc))
                raise UnreachableError("MLflow", self.tracking_uri, detail, _HINT) from exc
            raise

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with self.translate_errors(what):
            return fn()

    # ------------------------------------------------------------------ MetricSource

    def resolve_alias(self, model: str, alias: str) -> ModelVersionRef:
        what = f"model '{model}' alias '{alias}' in MLflow at {self.tracking_uri}"
        try:
            version = self._call(what, lambda: self.client.get_model_version_by_alias(model, alias))
        except UsageError as exc:
            raise UsageError(
                f"{exc}; register the model and point the alias at a version "
                f"(MlflowClient().set_registered_model_alias('{model}', '{alias}', VERSION))"
            ) from None
        return self._ref(version)

    def _ref(self, version: Any, aliases: list[str] | None = None) -> ModelVersionRef:
        return ModelVersionRef(
            model=version.name,
            version=str(version.version),
            run_id=version.run_id or None,
            aliases=sorted(aliases if aliases is not None else (version.aliases or [])),
            tags=dict(version.tags or {}),
            created_at=_ms(version.creation_timestamp),
        )

    def list_versions(self, model: str) -> list[ModelVersionRef]:
        """Every version of ``model``, oldest first; an unregistered model has none."""
        what = f"versions of model '{model}'"
        found = self._call(what, lambda: self._search_versions(model))
        if not found:
            return []
        by_version: dict[str, list[str]] = {}
        registered = self._call(what, lambda: self.client.get_registered_model(model))
        for alias, version in (registered.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        refs = [self._ref(v, by_version.get(str(v.version), [])) for v in found]
        return sorted(refs, key=lambda r: _version_key(r.version))

    def _search_versions(self, model: str) -> list[Any]:
        quoted = model.replace("'", "\\'")
        versions: list[Any] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(f"name = '{quoted}'", page_token=token)
            versions.extend(page)
            token = page.token
            if not token:
                return versions

    def get_version(self, model: str, version: str) -> ModelVersionRef:
        what = f"model '{model}' version {version}"
        found = self._call(what, lambda: self.client.get_model_version(model, version))
        return self._ref(found)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        run = self._call(f"run '{run_id}'", lambda: self.client.get_run(run_id))
        return {key: float(value) for key, value in run.data.metrics.items()}

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        """Every logged value of ``key``, in step then time order."""
        points = self._call(
            f"metric '{key}' of run '{run_id}'", lambda: self.client.get_metric_history(run_id, key)
        )
        history = [
            MetricPoint(key=p.key, value=float(p.value), step=int(p.step), at=_at(p.timestamp))
            for p in points
        ]
        return sorted(history, key=lambda p: (p.step, p.at))

    def baseline(self, model: str, metric: str, source: str, tag: str) -> Baseline:
        """The metrics of the approved (or baseline-tagged) version; see the module docstring."""
        candidates = [v for v in self.list_versions(model) if v.tags.get(tag) == "true"]
        candidates.sort(key=lambda v: (v.tags.get(APPROVED_AT_TAG, ""), _version_key(v.version)))
        for version in reversed(candidates):
            if version.run_id is None:
                continue
            metrics = self.run_metrics(version.run_id)
            if metric not in metrics:
                continue
            approved_at = version.tags.get(APPROVED_AT_TAG)
            if source == "approved_version" and approved_at:
                metrics = self._metrics_at(version.run_id, metrics, approved_at)
            return Baseline(model=model, version=version.version, metrics=metrics, source=source)
        raise UsageError(
            f"model '{model}' has no version tagged {tag}=true with metric '{metric}' in MLflow "
            f"at {self.tracking_uri}; approve a version (tag it {tag}=true) whose run logged "
            f"'{metric}'"
        )

    def _metrics_at(
        self, run_id: str, latest: dict[str, float], approved_at: str
    ) -> dict[str, float]:
        try:
            cutoff = datetime.fromisoformat(approved_at)
        except ValueError:
            return latest
        if cutoff.tzinfo is None:
            cutoff = cutoff.replace(tzinfo=UTC)
        result = dict(latest)
        for key in latest:
            before = [p for p in self.metric_history(run_id, key) if p.at <= cutoff]
            if before:
                result[key] = max(before, key=lambda p: (p.at, p.step)).value
        return result

    # ------------------------------------------------------------------ ModelRegistry

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._call(
            f"set alias '{alias}' of model '{model}' to version {version}",
            lambda: self.client.set_registered_model_alias(model, alias, version),
        )

    def delete_alias(self, model: str, alias: str) -> None:
        """Remove the alias; an alias that is already gone is not an error."""
        try:
            self._call(
                f"delete alias '{alias}' of model '{model}'",
                lambda: self.client.delete_registered_model_alias(model, alias),
            )
        except UsageError:
            self.list_versions(model)  # still raises if MLflow is unreachable

    def set_version_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        with self.translate_errors(f"tag model '{model}' version {version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(model, version, key, value)

    # ------------------------------------------------------------------ write-back

    def record_control_run(self, summary: ControlRunSummary) -> str:
        """Log the control run as an MLflow run and tag the version; returns the MLflow run id.

        Recording the same prodcontrol run twice reuses its MLflow run (found by tag).
        """
        what = f"record control run {summary.run_id} in MLflow"
        experiment_id = self._call(what, self._controls_experiment)
        run_id = self._call(what, lambda: self._control_run(experiment_id, summary))
        if summary.version is not None:
            self.set_version_tags(
                summary.model,
                summary.version,
                {
                    "prodcontrol.last_verdict": summary.verdict,
                    "prodcontrol.last_run_at": summary.finished_at.isoformat(),
                    "prodcontrol.last_run_id": summary.run_id,
                },
            )
        return run_id

    def _controls_experiment(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(CONTROLS_EXPERIMENT)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(
                self.client.create_experiment(
                    CONTROLS_EXPERIMENT,
                    artifact_location=artifact_location(self.tracking_uri, CONTROLS_EXPERIMENT),
                )
            )
        except MlflowException:  # created by a concurrent run in between
            again = self.client.get_experiment_by_name(CONTROLS_EXPERIMENT)
            if again is None:
                raise
            return str(again.experiment_id)

    def _control_run(self, experiment_id: str, summary: ControlRunSummary) -> str:
        from mlflow.entities import Metric, Param, RunTag

        existing = self.client.search_runs(
            [experiment_id], filter_string=f"tags.`prodcontrol.run_id` = '{summary.run_id}'"
        )
        if existing:
            return str(existing[0].info.run_id)
        version = summary.version or "unresolved"
        tags = {
            "prodcontrol.run_id": summary.run_id,
            "prodcontrol.model": summary.model,
            "prodcontrol.model_version": version,
            "prodcontrol.tier": summary.tier,
            "prodcontrol.verdict": summary.verdict,
            "mlflow.runName": f"{summary.model}-v{version}-{summary.run_id[:8]}",
        }
        run = self.client.create_run(
            experiment_id, start_time=int(summary.started_at.timestamp() * 1000), tags=tags
        )
        run_id = str(run.info.run_id)
        at = int(summary.finished_at.timestamp() * 1000)
        metrics = [Metric("verdict", VERDICT_CODES[summary.verdict], at, 0)]
        for item in summary.verdicts:
            metrics.append(Metric(f"verdict.{item.control_id}", VERDICT_CODES[item.verdict], at, 0))
            if item.value is not None:
                metrics.append(Metric(f"value.{item.control_id}", item.value, at, 0))
        params = {
            "model": summary.model,
            "model_version": version,
            "tier": summary.tier,
            "trigger": summary.trigger,
            "status": summary.status,
        } | {f"sample.{k}": str(v)[:500] for k, v in summary.sample.items() if v is not None}
        self.client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(f"verdict.{v.control_id}", v.verdict) for v in summary.verdicts],
        )
        for control_id, paths in summary.artifacts.items():
            for path in paths:
                if Path(path).is_file():
                    self.client.log_artifact(run_id, path, artifact_path=f"controls/{control_id}")
        self.client.set_terminated(run_id, status="FINISHED", end_time=at)
        return run_id


def _plain(message: str, code: str) -> str:
    """``RESOURCE_DOES_NOT_EXIST: Registered Model ... not found.`` without code and stop."""
    text = message.strip().splitlines()[0] if message.strip() else message
    return text.removeprefix(f"{code}: ").rstrip(".")


def _connection_detail(message: str) -> str:
    """A short reason instead of urllib3's paragraph."""
    lowered = message.lower()
    for needle, detail in (
        ("connection refused", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("name or service not known", "unknown host"),
        ("remotedisconnected", "the server closed the connection"),
    ):
        if needle in lowered:
            return detail
    first = message.strip().splitlines()[0] if message.strip() else message
    return first[:300]


def _is_connection_error(exc: BaseException) -> bool:
    import requests

    return isinstance(exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout)
