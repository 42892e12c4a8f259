"""The seams between the pure core and the outside systems.

Each outside system sits behind one small Protocol here. Adapters in
:mod:`prodcontrol.adapters` implement them over the real SDKs; :mod:`prodcontrol.testing`
ships in-memory fakes that pass the same contract tests. Nothing here imports an SDK.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import Control, DataSource, DataSpec, Sampling
from prodcontrol.catalog.types import VerdictValue
from prodcontrol.clock import Clock, SystemClock
from prodcontrol.evidence.anchor import Anchor
from prodcontrol.evidence.port import EvidenceStore


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- MLflow


class ModelVersionRef(Record):
    """One registered model version as the registry sees it."""

    model: str
    version: str
    run_id: str | None = None
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime | None = None


class MetricPoint(Record):
    key: str
    value: float
    step: int = 0
    at: datetime


class Baseline(Record):
    """The metrics recorded when a version was approved (or of a version tagged as baseline)."""

    model: str
    version: str
    metrics: dict[str, float]
    source: str


class VerdictSummary(Record):
    control_id: str
    verdict: VerdictValue
    value: float | None = None
    warn: float | None = None
    fail: float | None = None


class ControlRunSummary(Record):
    """A finished control run as written back to the registry (a run plus version tags)."""

    run_id: str
    model: str
    version: str | None
    tier: str
    trigger: str
    status: str
    verdict: VerdictValue
    started_at: datetime
    finished_at: datetime
    verdicts: list[VerdictSummary] = Field(default_factory=list)
    artifacts: dict[str, list[str]] = Field(
        default_factory=dict, description="control id -> local artifact paths"
    )
    sample: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class MetricSource(Protocol):
    """Reads what the model registry and tracking server know about a model."""

    def resolve_alias(self, model: str, alias: str) -> ModelVersionRef: ...

    def list_versions(self, model: str) -> list[ModelVersionRef]: ...

    def run_metrics(self, run_id: str) -> dict[str, float]: ...

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]: ...

    def baseline(self, model: str, metric: str, source: str, tag: str) -> Baseline: ...


@runtime_checkable
class ModelRegistry(Protocol):
    """Writes to the model registry: the serving alias and version tags (no stages: MLflow 3)."""

    def set_alias(self, model: str, alias: str, version: str) -> None: ...

    def delete_alias(self, model: str, alias: str) -> None: ...

    def set_version_tags(self, model: str, version: str, tags: dict[str, str]) -> None: ...

    def list_versions(self, model: str) -> list[ModelVersionRef]:
        """Every version with its aliases and tags (actions read which version serves)."""
        ...

    def record_control_run(self, summary: ControlRunSummary) -> str:
        """Write a finished control run back where registry users look; returns its run id."""
        ...


class Assessment(Record):
    """One scorer's feedback on one trace (an MLflow GenAI ``Feedback``)."""

    trace_id: str
    name: str
    value: bool | float | str | None = None
    error: str | None = Field(None, description="the scorer failed on this trace")
    at: datetime
    evaluation_run: str | None = Field(
        None, description="the mlflow.genai.evaluate run it came from; None: a served trace"
    )
    source_type: str = ""


class Assessments(Record):
    """The assessments of the traces MLflow links to one model version, in a window."""

    model_id: str = Field(description="the MLflow LoggedModel the version was registered from")
    experiment_id: str
    traces: int
    evaluation_runs: list[str] = Field(default_factory=list)
    items: list[Assessment] = Field(default_factory=list)


@runtime_checkable
class GenAIEvaluations(Protocol):
    """Reads GenAI evaluation results and trace feedback (MLflow 3) for a model version."""

    def assessments(
        self,
        version: ModelVersionRef,
        *,
        experiment: str | None,
        since: datetime,
        until: datetime,
        names: list[str],
    ) -> Assessments: ...


# --------------------------------------------------------------------------- data


class Dataset(Record):
    """A loaded table. ``frame`` is a pandas DataFrame; the core never looks inside it."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    frame: Any
    rows: int
    columns: list[str]
    source: str
    newest_at: datetime | None = None


@runtime_checkable
class DatasetSource(Protocol):
    """Loads reference or current data for a model from where the inventory says it is.

    ``columns``: read only these (those the data has; a missing one is the controls' to report),
    or every column when ``None``.
    """

    def load(
        self, spec: DataSource, *, now: datetime, columns: list[str] | None = None
    ) -> Dataset: ...


class ArtifactFile(Record):
    name: str
    path: str
    sha256: str
    media_type: str
    size_bytes: int


class ReportMetric(Record):
    """One metric of the run's report, as plain data: ``metric`` names it, ``args`` configure it
    (``value_drift`` {column, method, threshold}, ``missing`` {columns}, ``missing_column``
    {column}, ``column_count`` {column_type}, ``out_range`` {column, left, right}, ``out_list``
    {column, values})."""

    metric: str
    args: dict[str, Any] = Field(default_factory=dict)


class ReportSpec(Record):
    """What one measured control shows in the run's single report, and on which columns."""

    metrics: list[ReportMetric] = Field(default_factory=list)
    reference_columns: list[str] = Field(default_factory=list)
    current_columns: list[str] = Field(default_factory=list)
    strata: list[str] = Field(default_factory=list, description="stratification candidates")


class Measurement(Record):
    """What a checker measured: the number a verdict compares, and what explains it.

    ``report`` is what the control adds to the run's one report (rendered once per run by
    :meth:`DriftChecker.render_report`, never per control).
    """

    control_id: str
    value: float | None
    details: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[ArtifactFile] = Field(default_factory=list)
    sample: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    report: ReportSpec | None = None
    not_applicable: str | None = Field(
        None, description="why the control does not apply to this model (no value, no error)"
    )


class RunReport(Record):
    """The run's one report: its files, the sample it was rendered on, and per control the
    numbers the report computed (``report_score``... merged into that control's details)."""

    artifacts: list[ArtifactFile] = Field(default_factory=list)
    sample: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, dict[str, Any]] = Field(default_factory=dict)
    error: str | None = None


@runtime_checkable
class DriftChecker(Protocol):
    """Measures drift and data quality between a reference and a current dataset."""

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
    ) -> Measurement: ...

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
        """One report for the run's measured data controls, on one sample of at most
        ``sampling.max_rows`` rows; a failure comes back as ``RunReport(error=...)``."""
        ...


# --------------------------------------------------------------------------- notifications


class OutboundMessage(Record):
    """A message to one person (DM) or one channel, with a key that makes it once-only."""

    idempotency_key: str
    recipient_kind: Literal["person", "channel"]
    recipient: str
    text: str
    blocks: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    via: Literal["email"] | None = Field(None, description="force e-mail (Slack was down)")
    gate_id: str | None = None
    evidence_url: str | None = None


class Delivery(Record):
    """The answer of one delivery attempt."""

    ok: bool
    channel: str | None = None
    ts: str | None = None
    retry_after: float | None = None
    status_code: int | None = None
    error: str | None = None
    already_sent: bool = False


@runtime_checkable
class Notifier(Protocol):
    """Delivers messages to people and channels, and updates a message already sent."""

    def send(self, message: OutboundMessage) -> Delivery: ...

    def update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
    ) -> Delivery: ...


# --------------------------------------------------------------------------- evidence anchors


@runtime_checkable
class AnchorSink(Protocol):
    """Keeps daily chain heads where the evidence database's operator cannot rewrite them."""

    @property
    def name(self) -> str:
        """Where the anchors go, for messages (``mlflow http://... experiment ...``)."""
        ...

    def write_anchor(self, anchor: Anchor) -> None: ...

    def read_anchors(self) -> list[Anchor]: ...


__all__ = [
    "AnchorSink",
    "ArtifactFile",
    "Assessment",
    "Assessments",
    "Baseline",
    "Clock",
    "ControlRunSummary",
    "Dataset",
    "DatasetSource",
    "Delivery",
    "DriftChecker",
    "EvidenceStore",
    "GenAIEvaluations",
    "Measurement",
    "MetricPoint",
    "MetricSource",
    "ModelRegistry",
    "ModelVersionRef",
    "Notifier",
    "OutboundMessage",
    "SystemClock",
    "VerdictSummary",
]
