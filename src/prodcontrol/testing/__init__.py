"""In-memory fakes of the ports, for tests and demos.

Each fake behaves like its adapter as far as the contract tests can tell: same return types,
same errors for the same bad input. They keep what they were asked to do so tests can look.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prodcontrol.catalog.schema import Control, DataSource, DataSpec, Sampling
from prodcontrol.errors import UnreachableError, UsageError
from prodcontrol.ports import (
    Baseline,
    ControlRunSummary,
    Dataset,
    Delivery,
    Measurement,
    MetricPoint,
    ModelVersionRef,
    OutboundMessage,
    ReportSpec,
    RunReport,
)


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = when


@dataclass
class _FakeVersion:
    ref: ModelVersionRef
    metrics: dict[str, float] = field(default_factory=dict)


class FakeRegistry:
    """A model registry and metric source in memory (MetricSource + ModelRegistry)."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, _FakeVersion]] = {}
        self.aliases: dict[str, dict[str, str]] = {}
        self.history: dict[tuple[str, str], list[MetricPoint]] = {}
        self.recorded: list[ControlRunSummary] = []
        self.reachable = True

    def _check(self) -> None:
        if not self.reachable:
            raise UnreachableError("MLflow", "fake://registry", "connection refused")

    def add_version(
        self,
        model: str,
        version: str,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersionRef:
        ref = ModelVersionRef(
            model=model, version=version, run_id=f"run-{model}-{version}", tags=dict(tags or {})
        )
        self.versions.setdefault(model, {})[version] = _FakeVersion(ref, dict(metrics or {}))
        return ref

    def resolve_alias(self, model: str, alias: str) -> ModelVersionRef:
        self._check()
        version = self.aliases.get(model, {}).get(alias)
        if version is None:
            raise UsageError(f"model '{model}' has no alias '{alias}'; set it in the registry")
        return self._ref(model, version)

    def _ref(self, model: str, version: str) -> ModelVersionRef:
        entry = self.versions[model][version]
        aliases = sorted(a for a, v in self.aliases.get(model, {}).items() if v == version)
        return entry.ref.model_copy(update={"aliases": aliases})

    def list_versions(self, model: str) -> list[ModelVersionRef]:
        self._check()
        return [self._ref(model, v) for v in self.versions.get(model, {})]

    def run_metrics(self, run_id: str) -> dict[str, float]:
        self._check()
        for versions in self.versions.values():
            for entry in versions.values():
                if entry.ref.run_id == run_id:
                    return dict(entry.metrics)
        raise UsageError(f"no run '{run_id}'")

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        self._check()
        return list(self.history.get((run_id, key), []))

    def baseline(self, model: str, metric: str, source: str, tag: str) -> Baseline:
        self._check()
        for version in reversed(list(self.versions.get(model, {}))):
            entry = self.versions[model][version]
            if entry.ref.tags.get(tag) == "true" and metric in entry.metrics:
                return Baseline(model=model, version=version, metrics=entry.metrics, source=source)
        raise UsageError(f"model '{model}' has no version tagged {tag}=true with '{metric}'")

    def set_alias(self, model: str, alias: str, version: str) -> None:
        self._check()
        self.aliases.setdefault(model, {})[alias] = version

    def delete_alias(self, model: str, alias: str) -> None:
        self._check()
        self.aliases.get(model, {}).pop(alias, None)

    def set_version_tags(self, model: str, version: str, tags: dict[str, str]) -> None:
        self._check()
        entry = self.versions[model][version]
        entry.ref = entry.ref.model_copy(update={"tags": entry.ref.tags | tags})

    def record_control_run(self, summary: ControlRunSummary) -> str:
        """Keep the summary and tag the version as the MLflow adapter does."""
        self._check()
        self.recorded.append(summary)
        if summary.version is not None and summary.version in self.versions.get(summary.model, {}):
            self.set_version_tags(
                summary.model,
                summary.version,
                {
                    "prodcontrol.last_verdict": summary.verdict,
                    "prodcontrol.last_run_at": summary.finished_at.isoformat(),
                    "prodcontrol.last_run_id": summary.run_id,
                },
            )
        return f"fake-run-{summary.run_id}"


class FakeDatasetSource:
    """Serves datasets registered by a key (the source's path, name or query)."""

    def __init__(self) -> None:
        self.frames: dict[str, Any] = {}

    def add(self, key: str, frame: Any, newest_at: datetime | None = None) -> None:
        self.frames[key] = (frame, newest_at)

    def load(
        self, spec: DataSource, *, now: datetime, columns: list[str] | None = None
    ) -> Dataset:
        key = (
            getattr(spec, "path", None)
            or getattr(spec, "name", None)
            or getattr(spec, "query", None)
            or getattr(spec, "artifact_path", "")
        )
        if key not in self.frames:
            raise UnreachableError("data source", str(key), "no such dataset registered")
        frame, newest = self.frames[key]
        if columns is not None:
            frame = frame.loc[:, [c for c in frame.columns if c in set(columns)]]
        return Dataset(
            frame=frame,
            rows=len(frame),
            columns=list(frame.columns),
            source=str(key),
            newest_at=newest,
        )


class FakeDriftChecker:
    """Returns the value registered for a control id, so engine tests control every number.

    Like the Evidently adapter it answers ``Measurement(error=...)``, never a value, for empty
    data, a control column or declared feature missing from the data, a prediction-scope control
    without a prediction column, or an error registered in ``errors``; ``not_applicable`` for an
    out-of-range or unseen-categories check on a model that declares features but none of that
    kind; and it fills ``sample`` with the same keys.
    """

    def __init__(
        self, values: dict[str, float | None] | None = None, errors: dict[str, str] | None = None
    ) -> None:
        self.values = dict(values or {})
        self.errors = dict(errors or {})
        self.calls: list[str] = []
        self.reports: list[list[str]] = []

    def measure(
        self,
        control: Control,
        reference: Dataset,
        current: Dataset,
        *,
        sampling: Sampling,
        prediction_column: str | None,
        out_dir: str,
        contract: DataSpec | None = None,
    ) -> Measurement:
        self.calls.append(control.id)
        if contract is not None and prediction_column is None:
            prediction_column = contract.prediction_column
        sample = _fake_sample(sampling, reference.rows, current.rows)
        error = self.errors.get(control.id) or _fake_refusal(
            control, reference, current, prediction_column, contract
        )
        if error:
            return Measurement(control_id=control.id, value=None, error=error, sample=sample)
        not_applicable = _fake_not_applicable(control, contract)
        if not_applicable:
            return Measurement(
                control_id=control.id, value=None, not_applicable=not_applicable, sample=sample
            )
        return Measurement(
            control_id=control.id,
            value=self.values.get(control.id, 0.0),
            sample=sample,
            report=ReportSpec(),
        )

    def render_report(
        self,
        measured: dict[str, Measurement],
        reference: Dataset,
        current: Dataset,
        *,
        sampling: Sampling,
        out_dir: str,
        title: str,
    ) -> RunReport:
        """Writes no file; records which controls the run's one report would hold."""
        self.reports.append(list(measured))
        return RunReport(
            sample=_fake_sample(sampling, reference.rows, current.rows),
            details={control_id: dict(m.details) for control_id, m in measured.items()},
        )


def _fake_sample(sampling: Sampling, reference_rows: int, current_rows: int) -> dict[str, Any]:
    """The sample keys :class:`~prodcontrol.adapters.evidently.EvidentlyChecker` records."""
    sampled = max(reference_rows, current_rows) > sampling.max_rows
    return {
        "strategy": sampling.strategy if sampled else "none",
        "requested_strategy": sampling.strategy,
        "stratify_on": None,
        "seed": sampling.seed,
        "max_rows": sampling.max_rows,
        "size": min(current_rows, sampling.max_rows),
        "rows_total": current_rows,
        "reference_size": min(reference_rows, sampling.max_rows),
        "reference_rows_total": reference_rows,
        "sampled": sampled,
        "scores_computed_on": "all rows",
    }


def _fake_not_applicable(control: Control, contract: DataSpec | None) -> str | None:
    check = getattr(getattr(control, "params", None), "check", None)
    needs = {"out_of_range": "numerical", "unseen_categories": "categorical"}.get(str(check))
    if needs is None or contract is None or not contract.declares_features:
        return None
    if getattr(contract, needs):
        return None
    return f"the model declares no {needs} feature, so {check} does not apply (data.{needs})"


def _fake_refusal(
    control: Control,
    reference: Dataset,
    current: Dataset,
    prediction_column: str | None,
    contract: DataSpec | None = None,
) -> str | None:
    """Why the adapter would refuse to measure, as far as column names can tell."""
    for side, data in (("reference", reference), ("current", current)):
        if data.rows == 0:
            return f"the {side} data from {data.source} is empty (no rows)"
    params = getattr(control, "params", None)
    wanted = list(getattr(params, "columns", None) or [])
    if not wanted and contract is not None:
        wanted = contract.features()
    if getattr(params, "scope", None) == "prediction":
        if not prediction_column:
            return "scope 'prediction' needs the model's prediction column"
        wanted = [prediction_column]
    # the schema check counts columns missing from current; it needs them in the reference only
    sides = [reference] if getattr(params, "check", None) == "schema" else [reference, current]
    missing = [c for c in wanted if any(c not in data.columns for data in sides)]
    return f"column(s) {', '.join(map(repr, missing))} missing from the data" if missing else None


class FakeNotifier:
    """Records messages; can be told to fail the next N sends or to be down."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.updates: list[tuple[str, str, str]] = []
        self.fail_next = 0
        self.down = False
        self._keys: set[str] = set()

    def send(self, message: OutboundMessage) -> Delivery:
        if self.down:
            return Delivery(ok=False, error="connection refused")
        if self.fail_next:
            self.fail_next -= 1
            return Delivery(ok=False, status_code=500, error="internal_error")
        if message.idempotency_key in self._keys:
            return Delivery(ok=True, already_sent=True, channel=message.recipient)
        self._keys.add(message.idempotency_key)
        self.sent.append(message)
        return Delivery(ok=True, channel=message.recipient, ts=f"{len(self.sent)}.000100")

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        self.updates.append((channel, ts, text))
        return Delivery(ok=True, channel=channel, ts=ts)


# the local Slack Web API server (issue 6) lives in its own module; re-exported here
# the in-memory identity store (tokens, replay cache, decision credentials); re-exported here
from prodcontrol.identity.memory import InMemoryIdentityStore  # noqa: E402, F401 - re-exported
from prodcontrol.testing.slack_server import LocalSlackServer  # noqa: E402, F401 - re-exported for tests

# the in-memory evidence store (passes the store contract tests in tests/store); re-exported here
from prodcontrol.testing.store import InMemoryEvidenceStore  # noqa: E402, F401 - re-exported
