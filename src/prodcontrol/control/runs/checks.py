"""The check runner: one control run of a model's tier controls, recorded as evidence.

Three steps, so a scheduler can run each control as its own task (Prefect, Airflow) and the CLI
can run them in a row (:func:`run_checks`):

1. :func:`open_run` resolves the serving alias and starts the run in the evidence store. If MLflow
   is unreachable or the alias points nowhere it still starts a run (version ``unresolved``), so
   the ``error`` verdicts that follow are evidence too.
2. :func:`measure_control` measures one control. It never raises for a failure outside
   prodcontrol (MLflow, a database, a file, Evidently): it returns an outcome with the reason,
   which becomes an ``error`` verdict, never a pass. Reference and current data are loaded once
   per run and cached on the context.
3. :func:`close_run` decides verdicts with the tier's thresholds, plans findings (a fail-closed
   tier turns ``error`` into a blocking finding; active waivers accept findings), records
   verdicts, artifacts (SHA-256) and findings in one transaction, writes the result back to
   MLflow (best effort: a failure is recorded as an event), and hands over to escalation.

Freshness of control runs: the age is measured to the newest earlier run that completed (status
``succeeded`` or ``failed``: every control could be measured, whatever it found). A model whose
earlier runs all ended in ``error`` is measured from its oldest run; a model's first run ever
measures 0 and says so in the details.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from prodcontrol.catalog.schema import (
    VERDICT_ORDER,
    Control,
    DataQualityControl,
    DataSource,
    DataSpec,
    DriftControl,
    FreshnessControl,
    GenAIEvaluationControl,
    IncidentReportingControl,
    ModelEntry,
    OwnershipControl,
    PerformanceControl,
    PerformanceEstimatedControl,
    PerformanceRealizedControl,
    ReviewDueControl,
    ServingApprovalControl,
    TierPolicy,
    ValueControl,
)
from prodcontrol.catalog.types import VerdictValue
from prodcontrol.control.ports import RunPorts
from prodcontrol.control.runs import finding_groups as groups
from prodcontrol.control.runs.anchoring import anchor_if_due
from prodcontrol.control.runs.run_outcome import RunOutcome
from prodcontrol.control.runs.serving_approval import approval_of
from prodcontrol.engine import measures
from prodcontrol.engine import model_performance as performance
from prodcontrol.engine.findings import plan_findings
from prodcontrol.engine.genai import pass_rates
from prodcontrol.engine.incidents import elapsed_share as measures_incident_share
from prodcontrol.engine.segments import segment_note
from prodcontrol.engine.value import measure_value
from prodcontrol.engine.verdicts import Decided, decide, worst
from prodcontrol.errors import (
    EXIT_CONTROLS_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ProdControlError,
    StoreConflict,
    UnreachableError,
    UsageError,
)
from prodcontrol.evidence.records import (
    ArtifactIn,
    ControlRun,
    FindingIn,
    RunStatus,
    Verdict,
    VerdictIn,
)
from prodcontrol.ports import (
    ArtifactFile,
    ControlRunSummary,
    Dataset,
    Measurement,
    ModelVersionRef,
    ReportSpec,
    VerdictSummary,
)

log = logging.getLogger(__name__)

UNRESOLVED = "unresolved"
APPROVED_TAG = "prodcontrol.approved"
COMPLETED: frozenset[str] = frozenset({"succeeded", "failed"})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- records


class _LoadFailure(_Frozen):
    reason: str
    unreachable: bool


class _CannotMeasure(Exception):
    """Why a control cannot be measured in this run; becomes an ``error`` outcome."""

    def __init__(self, reason: str, *, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.unreachable = reason, unreachable


class RunContext(BaseModel):
    """An open control run: what was resolved, and the data loaded so far (not serialised)."""

    model_config = ConfigDict(extra="forbid")

    run: ControlRun
    model: str
    tier: str
    trigger: str
    version: ModelVersionRef | None = None
    resolve_error: str | None = None
    resolve_unreachable: bool = False
    control_ids: list[str]
    out_dir: str
    _data: dict[str, Dataset | _LoadFailure] = PrivateAttr(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run.id

    @property
    def already_finished(self) -> bool:
        """An earlier attempt with the same idempotency key already recorded this run."""
        return self.run.status != "running"

    @property
    def version_label(self) -> str:
        return self.version.version if self.version else UNRESOLVED


class ControlOutcome(_Frozen):
    """What measuring one control gave: a value, or the reason there is none."""

    control_id: str
    kind: str
    value: float | None = None
    error: str | None = None
    unreachable: bool = False
    not_applicable: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[ArtifactFile] = Field(default_factory=list)
    sample: dict[str, Any] = Field(default_factory=dict)
    report: ReportSpec | None = Field(None, description="what it adds to the run's one report")


class VerdictRow(_Frozen):
    control: str
    kind: str
    verdict: VerdictValue
    value: float | None
    warn: float | None
    fail: float | None
    direction: str
    reason: str
    artifact: str | None = Field(
        None,
        description="the report a person opens: the run report's snapshot (the web page "
        "renders it), else an HTML page, else the first artifact",
    )
    artifacts: list[str] = Field(default_factory=list)

    @property
    def threshold(self) -> str:
        worse = ">=" if self.direction == "higher_is_worse" else "<="
        parts = [f"warn {worse} {self.warn:g}"] if self.warn is not None else []
        parts += [f"fail {worse} {self.fail:g}"] if self.fail is not None else []
        return ", ".join(parts)


class FindingRow(_Frozen):
    id: str
    control: str
    verdict: VerdictValue
    severity: str
    blocking: bool
    status: str


class CheckResult(_Frozen):
    """One control run as the CLI and the flows report it."""

    run_id: str
    model: str
    version: str
    tier: str
    status: str
    verdict: VerdictValue
    verdicts: list[VerdictRow]
    findings: list[FindingRow]
    blocking: bool
    unreachable: bool
    exit_code: int
    mlflow_run_id: str | None = None
    writeback_error: str | None = None
    gate_id: str | None = Field(None, description="the run's gate: opened, or joined")


# --------------------------------------------------------------------------- 1. open


def open_run(
    rt: RunPorts,
    model: str,
    *,
    trigger: str,
    idempotency_key: str | None = None,
    flow_run_id: str | None = None,
    version: str | None = None,
) -> RunContext:
    """Resolve the serving version (or ``version``, a candidate) and start the run; an unknown
    model is a UsageError."""
    entry = rt.config.model(model)
    tier = rt.config.tier(entry)
    resolved, problem, unreachable = (
        _resolve(rt, entry) if version is None else _resolve_version(rt, entry, version)
    )
    version_ref = resolved
    sample = tier.sampling.model_dump() | {"serving_alias": entry.serving_alias}
    if version is not None:
        sample["candidate_version"] = version  # not (yet) the serving one
    if problem:
        sample["resolve_error"] = problem
    run = rt.store.start_run(
        entry.name,
        version_ref.version if version_ref else UNRESOLVED,
        entry.tier,
        trigger,
        idempotency_key=idempotency_key,
        flow_run_id=flow_run_id,
        sample=sample,
    )
    return RunContext(
        run=run,
        model=entry.name,
        tier=entry.tier,
        trigger=trigger,
        version=version_ref,
        resolve_error=problem,
        resolve_unreachable=unreachable,
        control_ids=[c.id for c in rt.config.controls_for(entry)],
        out_dir=str(rt.settings.artifact_dir / run.id),
    )


def _resolve_version(
    rt: RunPorts, entry: ModelEntry, version: str
) -> tuple[ModelVersionRef | None, str | None, bool]:
    try:
        found = [v for v in rt.metrics.list_versions(entry.name) if v.version == version]
    except UnreachableError as exc:
        return None, str(exc), True
    except ProdControlError as exc:
        return None, f"version {version} of {entry.name} cannot be read: {exc}", False
    if not found:
        return None, f"{entry.name} has no version {version} in the registry", False
    return found[0], None, False


def _resolve(rt: RunPorts, entry: ModelEntry) -> tuple[ModelVersionRef | None, str | None, bool]:
    try:
        return rt.metrics.resolve_alias(entry.name, entry.serving_alias), None, False
    except UnreachableError as exc:
        return None, str(exc), True
    except ProdControlError as exc:
        return None, f"the serving alias '{entry.serving_alias}' points nowhere: {exc}", False


# --------------------------------------------------------------------------- 2. measure


def measure_control(rt: RunPorts, ctx: RunContext, control_id: str) -> ControlOutcome:
    """Measure one control of the run; failures outside prodcontrol come back as ``error``."""
    entry = rt.config.model(ctx.model)
    controls = {c.id: c for c in rt.config.controls_for(entry)}
    if control_id not in controls:
        raise UsageError(
            f"control '{control_id}' is not in tier '{ctx.tier}'; its controls: "
            f"{', '.join(controls)}"
        )
    control = controls[control_id]
    try:
        return _measure(rt, ctx, entry, control)
    except _CannotMeasure as exc:
        return _failed(control, exc.reason, unreachable=exc.unreachable)
    except UnreachableError as exc:
        return _failed(control, str(exc), unreachable=True)
    except ProdControlError as exc:
        return _failed(control, str(exc))
    except Exception as exc:  # a control that cannot run is an error verdict, never a crash
        log.exception("control %s of %s could not be measured", control.id, ctx.model)
        return _failed(control, f"could not measure: {type(exc).__name__}: {exc}")


def _failed(control: Control, reason: str, *, unreachable: bool = False) -> ControlOutcome:
    return ControlOutcome(
        control_id=control.id, kind=control.kind, error=reason, unreachable=unreachable
    )


def _measure(rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: Control) -> ControlOutcome:
    if isinstance(control, DriftControl | DataQualityControl):
        return _data_control(rt, ctx, entry, control)
    if isinstance(
        control, PerformanceControl | PerformanceEstimatedControl | PerformanceRealizedControl
    ):
        return _any_performance(rt, ctx, entry, control)
    if isinstance(control, FreshnessControl):
        return _freshness(rt, ctx, entry, control)
    if isinstance(control, OwnershipControl | ServingApprovalControl | IncidentReportingControl):
        return _governance(rt, ctx, entry, control)
    if isinstance(control, ValueControl | GenAIEvaluationControl):
        return _logged_outcomes(rt, ctx, entry, control)
    return _review_due(rt, entry, control)


def _logged_outcomes(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: ValueControl | GenAIEvaluationControl
) -> ControlOutcome:
    """What MLflow logged about the serving model in use: its KPI, its GenAI evaluations."""
    if isinstance(control, ValueControl):
        return _value_capture(rt, entry, control)
    return _genai_evaluation(rt, ctx, entry, control)


def _genai_evaluation(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: GenAIEvaluationControl
) -> ControlOutcome:
    """Scorer pass rates of the serving version's evaluations and traces over the window."""
    if entry.genai is None:
        return ControlOutcome(
            control_id=control.id,
            kind=control.kind,
            not_applicable=f"model '{entry.name}' declares no genai: section in models.yaml "
            "(not a generative model)",
        )
    version = _serving(ctx)
    until = rt.clock.now()
    since = until - control.params.window
    found = rt.genai.assessments(
        version,
        experiment=entry.genai.experiment,
        since=since,
        until=until,
        names=list(control.params.scorers),
    )
    value, details, error = pass_rates(found.items, control.params, since=since, until=until)
    details |= {
        "model_id": found.model_id,
        "experiment_id": found.experiment_id,
        "traces_in_window": found.traces,
        "serving_version": version.version,
    }
    return ControlOutcome(
        control_id=control.id, kind=control.kind, value=value, error=error, details=details
    )


def _governance(
    rt: RunPorts,
    ctx: RunContext,
    entry: ModelEntry,
    control: OwnershipControl | ServingApprovalControl | IncidentReportingControl,
) -> ControlOutcome:
    """Ownership before deployment, deployment only through the gates, incidents reported."""
    if isinstance(control, OwnershipControl):
        missing = measures.missing_owners(entry, list(control.params.roles))
        return _value(control, float(len(missing)), missing_roles=missing)
    if isinstance(control, IncidentReportingControl):
        return _incident_reporting(rt, entry, control)
    return _serving_approval(rt, ctx, control)


def _incident_reporting(
    rt: RunPorts, entry: ModelEntry, control: IncidentReportingControl
) -> ControlOutcome:
    """The open serious incident closest to (or past) its Art. 73 deadline without a report."""
    from prodcontrol.control.lifecycle import incidents

    now = rt.clock.now()
    waiting = [v for v in incidents.list_incidents(rt, entry.name) if v.status == "open"]
    shares = {v.id: measures_incident_share(v.aware_at, v.deadline, now) for v in waiting}
    worst = max(shares, key=lambda i: shares[i], default=None)
    return _value(
        control,
        shares[worst] if worst else 0.0,
        unreported=sorted(shares),
        worst_incident=worst,
        deadline=next((v.deadline.isoformat() for v in waiting if v.id == worst), None),
    )


def _serving_approval(
    rt: RunPorts, ctx: RunContext, control: ServingApprovalControl
) -> ControlOutcome:
    approval = approval_of(rt.store, ctx.model, _serving(ctx))
    return _value(
        control, approval.value, serving_version=approval.version, approved_by=approval.by
    )


def _value_capture(rt: RunPorts, entry: ModelEntry, control: ValueControl) -> ControlOutcome:
    return _measured(control, measure_value(control, entry, rt.metrics, rt.clock.now()))


def _measured(control: Control, measured: Measurement) -> ControlOutcome:
    """A checker's or the value engine's :class:`Measurement` as this run's outcome."""
    return ControlOutcome(
        control_id=control.id,
        kind=control.kind,
        value=measured.value,
        error=measured.error,
        not_applicable=measured.not_applicable,
        details=measured.details,
        artifacts=measured.artifacts,
        sample=measured.sample,
        report=measured.report,
    )


def _value(control: Control, value: float, **details: Any) -> ControlOutcome:
    return ControlOutcome(control_id=control.id, kind=control.kind, value=value, details=details)


def _data_control(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: DriftControl | DataQualityControl
) -> ControlOutcome:
    data = _data_spec(entry)
    reference = _dataset(rt, ctx, "reference", data.reference)
    current = _dataset(rt, ctx, "current", data.current)
    Path(ctx.out_dir).mkdir(parents=True, exist_ok=True)
    measured = rt.checker.measure(
        control,
        reference,
        current,
        sampling=rt.config.tier(entry).sampling,
        prediction_column=data.prediction_column,
        out_dir=ctx.out_dir,
        contract=data,
    )
    return _measured(control, measured)


def _data_spec(entry: ModelEntry) -> DataSpec:
    if entry.data is None:
        raise UsageError(
            f"model '{entry.name}' has no data: section in models.yaml; drift, data-quality and "
            "data-freshness controls need its reference and current data"
        )
    return entry.data


def _dataset(rt: RunPorts, ctx: RunContext, side: str, spec: DataSource) -> Dataset:
    """Load one side once per run; a failure is cached too, so every control reports it."""
    if side not in ctx._data:
        try:
            ctx._data[side] = rt.datasets.load(
                _with_run(ctx, spec), now=rt.clock.now(), columns=read_columns(rt, ctx.model)
            )
        except UnreachableError as exc:
            ctx._data[side] = _LoadFailure(reason=str(exc), unreachable=True)
        except ProdControlError as exc:
            ctx._data[side] = _LoadFailure(reason=str(exc), unreachable=False)
    loaded = ctx._data[side]
    if isinstance(loaded, _LoadFailure):
        message = f"could not load the {side} data: {loaded.reason}"
        raise _CannotMeasure(message, unreachable=loaded.unreachable)
    return loaded


def read_columns(rt: RunPorts, model: str) -> list[str] | None:
    """The columns a run reads: the data contract's (features, prediction, target, time) and
    every column a control names; ``None`` (every column) when the model declares no features."""
    entry = rt.config.model(model)
    data = entry.data
    if data is None or not data.declares_features:
        return None
    named: list[str | None] = [
        *data.declared_columns(),
        getattr(data.reference, "time_column", None),
        getattr(data.current, "time_column", None),
    ]
    for control in rt.config.controls_for(entry):
        named += list(getattr(getattr(control, "params", None), "columns", None) or [])
    return list(dict.fromkeys(c for c in named if c))


def _with_run(ctx: RunContext, spec: DataSource) -> DataSource:
    """An MLflow source without a run reads the serving version's run."""
    if spec.type not in ("mlflow_artifact", "mlflow_dataset") or spec.run_id is not None:
        return spec
    run_id = _serving(ctx).run_id
    if run_id is None:
        raise _CannotMeasure("the serving version has no run to read the MLflow data source from")
    return spec.model_copy(update={"run_id": run_id})


def _serving(ctx: RunContext) -> ModelVersionRef:
    if ctx.version is None:
        reason = ctx.resolve_error or "the serving version is unknown"
        raise _CannotMeasure(reason, unreachable=ctx.resolve_unreachable)
    return ctx.version


def _performance(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: PerformanceControl
) -> ControlOutcome:
    if entry.baseline is None:
        raise UsageError(
            f"model '{entry.name}' names no baseline in models.yaml (baseline: {{metric: ...}}); "
            "the performance control compares against it"
        )
    version = _serving(ctx)
    metric = control.params.metric or entry.baseline.metric
    if version.run_id is None:
        raise UsageError(f"version {version.version} of '{entry.name}' has no run with metrics")
    current = rt.metrics.run_metrics(version.run_id)
    if metric not in current:
        raise UsageError(
            f"run {version.run_id} of version {version.version} has no metric '{metric}'; "
            f"it has: {', '.join(sorted(current)) or 'none'}"
        )
    source = entry.baseline.source
    tag = APPROVED_TAG if source == "approved_version" else entry.baseline.tag
    baseline = rt.metrics.baseline(entry.name, metric, source, tag)
    drop = measures.performance_drop(current[metric], baseline.metrics[metric], control.params)
    return _value(
        control,
        drop,
        metric=metric,
        current=current[metric],
        baseline=baseline.metrics[metric],
        baseline_version=baseline.version,
        baseline_source=baseline.source,
        serving_version=version.version,
        mode=control.params.mode,
    )


def _any_performance(
    rt: RunPorts,
    ctx: RunContext,
    entry: ModelEntry,
    control: PerformanceControl | PerformanceEstimatedControl | PerformanceRealizedControl,
) -> ControlOutcome:
    """MLflow's logged metric against the baseline, or the metric on the data it scored."""
    if isinstance(control, PerformanceControl):
        return _performance(rt, ctx, entry, control)
    return _model_performance(rt, ctx, entry, control)


def _model_performance(
    rt: RunPorts,
    ctx: RunContext,
    entry: ModelEntry,
    control: PerformanceEstimatedControl | PerformanceRealizedControl,
) -> ControlOutcome:
    """The serving model's metric on the current data: estimated from its scores before the
    labels arrive, or realized on the labels that arrived (:mod:`.engine.model_performance`)."""
    data = _data_spec(entry)
    if data.task is None:
        return _not_applicable(
            control,
            f"model '{entry.name}' declares no data.task (classification or regression) in "
            "models.yaml; performance on data needs it",
        )
    if isinstance(control, PerformanceRealizedControl) and data.labels is None:
        return _not_applicable(
            control,
            f"model '{entry.name}' declares no data.labels (where the labels that arrive after "
            "scoring are, and the id column that joins them)",
        )
    reference = _dataset(rt, ctx, "reference", data.reference).frame
    current = _dataset(rt, ctx, "current", data.current).frame
    if isinstance(control, PerformanceEstimatedControl):
        assessed = performance.estimated(
            control.params, data, reference, current, loss_regressor=rt.loss_regressor
        )
    else:
        assessed = _realized(rt, entry, control, reference=reference, current=current)
    return ControlOutcome(
        control_id=control.id,
        kind=control.kind,
        value=assessed.value,
        not_applicable=assessed.not_applicable,
        details=assessed.details,
    )


def _realized(
    rt: RunPorts,
    entry: ModelEntry,
    control: PerformanceRealizedControl,
    *,
    reference: Any,
    current: Any,
) -> performance.Assessed:
    data = _data_spec(entry)
    labels_spec = data.labels
    assert labels_spec is not None  # checked by the caller
    label_column = labels_spec.label_column or data.target_column
    wanted = [labels_spec.id_column, label_column, labels_spec.time_column]
    columns = list(dict.fromkeys(c for c in wanted if c))
    try:
        labels = rt.datasets.load(labels_spec.source, now=rt.clock.now(), columns=columns)
    except UnreachableError as exc:
        raise _CannotMeasure(f"could not load the labels: {exc}", unreachable=True) from exc
    except ProdControlError as exc:
        raise _CannotMeasure(f"could not load the labels: {exc}") from exc
    joined = performance.join_labels(
        control.params,
        data,
        labels_spec,
        current,
        labels.frame,
        now=rt.clock.now(),
        prediction_time=getattr(data.current, "time_column", None),
    )
    mlflow_baseline = None
    if control.params.baseline == "mlflow":
        metric = performance.metric_for(control.params.metric, data)
        mlflow_baseline = _mlflow_baseline(rt, entry, metric)
    assessed = performance.realized(
        control.params, data, joined, reference, mlflow_baseline=mlflow_baseline
    )
    details = assessed.details | {"labels_source": labels.source}
    return assessed.model_copy(update={"details": details})


def _mlflow_baseline(rt: RunPorts, entry: ModelEntry, metric: str) -> float:
    """The metric logged on the approved version's run (the model's ``baseline`` settings)."""
    source = entry.baseline.source if entry.baseline else "approved_version"
    tag = entry.baseline.tag if entry.baseline and source == "tagged_version" else APPROVED_TAG
    baseline = rt.metrics.baseline(entry.name, metric, source, tag)
    if metric not in baseline.metrics:
        raise UsageError(
            f"the baseline version {baseline.version} of '{entry.name}' logged no metric "
            f"'{metric}'; log it on the approved version's run or use baseline: reference"
        )
    return baseline.metrics[metric]


def _not_applicable(control: Control, reason: str) -> ControlOutcome:
    return ControlOutcome(control_id=control.id, kind=control.kind, not_applicable=reason)


def _freshness(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: FreshnessControl
) -> ControlOutcome:
    if control.params.measure == "data_age":
        return _data_age(rt, ctx, entry, control)
    return _run_age(rt, ctx, control)


def _data_age(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, control: FreshnessControl
) -> ControlOutcome:
    current = _dataset(rt, ctx, "current", _data_spec(entry).current)
    if current.newest_at is None:
        raise UsageError(
            f"the current data from {current.source} has no time: give time_column in models.yaml"
        )
    age = measures.age_hours(current.newest_at, rt.clock.now())
    return _value(control, age, newest_at=current.newest_at.isoformat(), source=current.source)


def _run_age(rt: RunPorts, ctx: RunContext, control: FreshnessControl) -> ControlOutcome:
    earlier = [r for r in rt.store.list_runs(ctx.model) if r.id != ctx.run_id]
    done = [r for r in earlier if r.status in COMPLETED]
    now = rt.clock.now()
    if done:
        last = max(done, key=lambda r: r.finished_at or r.started_at)
        at = last.finished_at or last.started_at
        return _value(
            control, measures.age_hours(at, now), last_run_id=last.id, last_run_at=at.isoformat()
        )
    if earlier:
        first = min(earlier, key=lambda r: r.started_at)
        return _value(
            control,
            measures.age_hours(first.started_at, now),
            last_run_id=None,
            note=f"no run completed since the first one at {first.started_at.isoformat()}",
        )
    return _value(control, 0.0, last_run_id=None, note="first control run of this model")


def _review_due(rt: RunPorts, entry: ModelEntry, control: ReviewDueControl) -> ControlOutcome:
    from prodcontrol.control.lifecycle.model_review import (
        last_review_date,  # an approved review gate resets it
    )

    last_review = last_review_date(rt, entry)
    if last_review is None:
        raise UsageError(
            f"model '{entry.name}' has no last_review date in models.yaml; record the date of "
            "its last model review"
        )
    every = rt.config.tier(entry).review_every
    elapsed = measures.review_elapsed(last_review, rt.clock.now(), every)
    return _value(
        control,
        elapsed,
        last_review=last_review.isoformat(),
        review_every_days=every.days,
        checklist=list(control.params.checklist),
    )


# --------------------------------------------------------------------------- 3. close


def close_run(rt: RunPorts, ctx: RunContext, outcomes: list[ControlOutcome]) -> CheckResult:
    """Decide, record, write back to MLflow, escalate; returns what the run found."""
    if ctx.already_finished:
        return result_of(rt, ctx.run_id)
    entry = rt.config.model(ctx.model)
    tier = rt.config.tier(entry)
    controls = {c.id: c for c in rt.config.controls_for(entry)}
    outcomes = _complete(ctx, controls, outcomes)
    outcomes, report_files = _run_report(rt, ctx, entry, outcomes)
    decided = [_decide(controls[o.control_id], o) for o in outcomes]
    now = rt.clock.now()
    from prodcontrol.control.gates.waivers import (
        views,  # a waiver's scope is its finding's version/verdict
    )

    waivers = views(rt, ctx.model, active_at=now)
    plans = plan_findings(decided, controls, tier, waivers, now, model_version=ctx.version_label)
    verdicts = [VerdictIn(kind=controls[d.control_id].kind, **d.model_dump()) for d in decided]
    artifacts = [
        ArtifactIn.from_file(
            Path(a.path), name=a.name, media_type=a.media_type, control_id=o.control_id
        )
        for o in outcomes
        for a in o.artifacts
        if Path(a.path).is_file()
    ] + [
        ArtifactIn.from_file(Path(a.path), name=a.name, media_type=a.media_type)
        for a in report_files
        if Path(a.path).is_file()
    ]
    findings = [
        FindingIn(
            control_id=p.control_id,
            severity=p.severity,
            blocking=p.blocking,
            status="waived" if p.waived else "open",
        )
        for p in plans
    ]
    run, gate_id = _record(
        rt, ctx, tier, _status(decided), verdicts=verdicts, artifacts=artifacts, findings=findings
    )
    result = result_of(rt, run.id)
    if gate_id is not None and result.gate_id is None:
        result = result.model_copy(update={"gate_id": gate_id})
    result = _write_back(rt, ctx, result, outcomes, run, report_files=report_files)
    anchor_if_due(rt)
    return result


def _record(
    rt: RunPorts,
    ctx: RunContext,
    tier: TierPolicy,
    status: RunStatus,
    *,
    verdicts: list[VerdictIn],
    artifacts: list[ArtifactIn],
    findings: list[FindingIn],
) -> tuple[ControlRun, str | None]:
    """The run, its findings, its gate and its chain's first step: one transaction.

    A concurrent run of the same version that opened the version's gate first makes the store
    refuse ours (StoreConflict): the retry joins that gate. A follow-up that breaks (a bug
    building a message) must not lose the run: it is recorded alone, the failure is an event,
    and the ticker starts the chain that is missing.
    """
    follow_up = RunOutcome(rt, tier)
    for attempt in range(2):
        try:
            closed = rt.store.close_run(
                ctx.run_id, status, verdicts, artifacts, findings, follow_up=follow_up
            )
            return closed.run, closed.gate.id if closed.gate else None
        except StoreConflict:
            if attempt or rt.store.get_run(ctx.run_id).status != "running":
                raise
        except (UnreachableError, UsageError):
            raise
        except Exception as exc:  # the run is evidence; a broken follow-up must not hide it
            log.exception("gate or escalation for run %s failed", ctx.run_id)
            run = rt.store.finish_run(ctx.run_id, status, verdicts, artifacts, findings)
            rt.store.record_event(
                "escalation_failed", "run", run.id, ctx.model, {"error": f"{exc!r}"[:2000]}
            )
            return run, None
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _run_report(
    rt: RunPorts, ctx: RunContext, entry: ModelEntry, outcomes: list[ControlOutcome]
) -> tuple[list[ControlOutcome], list[ArtifactFile]]:
    """The run's one report over every measured data control, on one bounded sample.

    The data is the run's (loaded once, shared with the controls). Each reported control's
    details get the report's own numbers; a report that fails is said in those details and
    changes no verdict.
    """
    reported = {o.control_id: o for o in outcomes if o.report is not None and o.error is None}
    if not reported:
        return outcomes, []
    data = _data_spec(entry)
    try:
        reference = _dataset(rt, ctx, "reference", data.reference)
        current = _dataset(rt, ctx, "current", data.current)
    except _CannotMeasure:  # measured controls loaded it; a reload that fails leaves no report
        return outcomes, []
    Path(ctx.out_dir).mkdir(parents=True, exist_ok=True)
    measured = {
        cid: Measurement(
            control_id=cid, value=o.value, details=o.details, sample=o.sample, report=o.report
        )
        for cid, o in reported.items()
    }
    report = rt.checker.render_report(
        measured,
        reference,
        current,
        sampling=rt.config.tier(entry).sampling,
        out_dir=ctx.out_dir,
        title=f"{ctx.model} version {ctx.version_label}, run {ctx.run_id}",
    )

    def with_report(outcome: ControlOutcome) -> ControlOutcome:
        if outcome.control_id not in reported:
            return outcome
        details = dict(report.details.get(outcome.control_id, outcome.details))
        if report.error:
            details["report_error"] = report.error
        sample = report.sample or outcome.sample
        return outcome.model_copy(update={"details": details, "sample": sample})

    return [with_report(o) for o in outcomes], report.artifacts


def _complete(
    ctx: RunContext, controls: dict[str, Control], outcomes: list[ControlOutcome]
) -> list[ControlOutcome]:
    """One outcome per control of the run: a control nobody measured is an error, not absent."""
    unknown = [o.control_id for o in outcomes if o.control_id not in controls]
    if unknown:
        raise UsageError(f"outcomes for controls not in tier '{ctx.tier}': {', '.join(unknown)}")
    latest = {o.control_id: o for o in outcomes}
    for control_id in ctx.control_ids:
        if control_id not in latest and control_id in controls:
            latest[control_id] = _failed(
                controls[control_id],
                "the control was not measured in this run (its task failed or was skipped)",
            )
    return list(latest.values())


def _decide(control: Control, outcome: ControlOutcome) -> Decided:
    details = dict(outcome.details)
    if outcome.sample:
        details["sample"] = outcome.sample
    if outcome.unreachable:
        details["unreachable"] = True
    decided = decide(
        control.id,
        outcome.value,
        control.thresholds,
        error=outcome.error,
        not_applicable=outcome.not_applicable,
        details=_json_safe(details),
    )
    note = segment_note(details) if decided.verdict != "error" else None
    if note is None:
        return decided
    return decided.model_copy(update={"reason": f"{decided.reason} ({note})"})


def _status(decided: list[Decided]) -> RunStatus:
    values = {d.verdict for d in decided}
    if "error" in values or not decided:
        return "error"
    return "failed" if "fail" in values else "succeeded"


def _write_back(
    rt: RunPorts,
    ctx: RunContext,
    result: CheckResult,
    outcomes: list[ControlOutcome],
    run: ControlRun,
    *,
    report_files: list[ArtifactFile],
) -> CheckResult:
    """Best effort: the evidence is already recorded; a failure here is an event, not lost."""
    summary = ControlRunSummary(
        run_id=result.run_id,
        model=result.model,
        version=ctx.version.version if ctx.version else None,
        tier=result.tier,
        trigger=ctx.trigger,
        status=result.status,
        verdict=result.verdict,
        started_at=run.started_at,
        finished_at=run.finished_at or run.started_at,
        verdicts=[
            VerdictSummary(
                control_id=v.control, verdict=v.verdict, value=v.value, warn=v.warn, fail=v.fail
            )
            for v in result.verdicts
        ],
        artifacts={o.control_id: [a.path for a in o.artifacts] for o in outcomes if o.artifacts}
        | ({"run-report": [a.path for a in report_files]} if report_files else {}),
        sample=run.sample,
    )
    try:
        mlflow_run = rt.registry.record_control_run(summary)
    except Exception as exc:  # any failure: MLflow down, a deleted version, a refused write
        reason = str(exc) if isinstance(exc, ProdControlError) else f"{type(exc).__name__}: {exc}"
        rt.store.record_event(
            "mlflow_writeback_failed",
            "run",
            result.run_id,
            result.model,
            {"error": reason[:2000], "version": summary.version},
        )
        return result.model_copy(update={"writeback_error": reason})
    rt.store.record_event(
        "mlflow_writeback", "run", result.run_id, result.model, {"mlflow_run_id": mlflow_run}
    )
    return result.model_copy(update={"mlflow_run_id": mlflow_run})


def result_of(rt: RunPorts, run_id: str) -> CheckResult:
    """The result of a finished run, read back from the evidence store."""
    run = rt.store.get_run(run_id)
    verdicts = rt.store.verdicts_for(run_id)
    artifacts: dict[str, list[str]] = {}
    by_verdict = {v.id: v.control_id for v in verdicts}
    run_report: list[str] = []
    for artifact in rt.store.artifacts_for(run_id):
        control = by_verdict.get(artifact.verdict_id or "")
        if control:
            artifacts.setdefault(control, []).append(artifact.path)
        elif artifact.verdict_id is None:
            run_report.append(artifact.path)
    for verdict in verdicts:  # the run's one report explains every data control it measured
        if verdict.kind in ("drift", "data_quality") and verdict.verdict != "error":
            artifacts.setdefault(verdict.control_id, []).extend(run_report)
    rows = [_row(v, artifacts.get(v.control_id, [])) for v in _in_tier_order(rt, run, verdicts)]
    findings = [
        FindingRow(
            id=f.id,
            control=f.control_id,
            verdict=f.verdict,
            severity=f.severity,
            blocking=f.blocking,
            status=f.status,
        )
        for f in rt.store.list_findings(model=run.model)
        if f.run_id == run_id
    ]
    unreachable = any(v.verdict == "error" and v.details.get("unreachable") for v in verdicts)
    blocking = any(f.blocking and f.status == "open" for f in findings)
    run_findings = [f for f in rt.store.list_findings(model=run.model) if f.run_id == run_id]
    covering = groups.gates_by_finding(rt.store.list_gates(model=run.model), run_findings)
    gate_id = next(
        (covering[f.id].id for f in groups.worst_first(run_findings) if f.id in covering), None
    )
    return CheckResult(
        run_id=run.id,
        model=run.model,
        version=run.model_version,
        tier=run.tier,
        status=run.status,
        verdict=worst([r.verdict for r in rows]),
        verdicts=rows,
        findings=findings,
        blocking=blocking,
        unreachable=unreachable,
        exit_code=exit_code([r.verdict for r in rows], blocking=blocking, unreachable=unreachable),
        gate_id=gate_id,
    )


def _in_tier_order(rt: RunPorts, run: ControlRun, verdicts: list[Verdict]) -> list[Verdict]:
    """The tier's order (drift first, reviews last) as the catalog lists it, else by name."""
    try:
        order = [c.id for c in rt.config.controls_for(rt.config.model(run.model))]
    except ProdControlError:
        order = []
    rank = {control_id: index for index, control_id in enumerate(order)}
    return sorted(verdicts, key=lambda v: (rank.get(v.control_id, len(rank)), v.control_id))


def _row(verdict: Verdict, paths: list[str]) -> VerdictRow:
    """``artifact`` is the file a person opens to see the report: the run report's snapshot (the
    web page renders it), else an HTML page (runs recorded before), else the first file."""
    from prodcontrol.adapters.evidently_snapshot import SNAPSHOT_SUFFIX

    pages = [p for p in paths if p.endswith(SNAPSHOT_SUFFIX)]
    pages += [p for p in paths if p.endswith((".html", ".html.gz"))]
    return VerdictRow(
        control=verdict.control_id,
        kind=verdict.kind,
        verdict=verdict.verdict,
        value=verdict.value,
        warn=verdict.warn,
        fail=verdict.fail,
        direction=verdict.direction,
        reason=verdict.reason,
        artifact=next(iter(pages or paths), None),
        artifacts=paths,
    )


def exit_code(verdicts: list[VerdictValue], *, blocking: bool, unreachable: bool) -> int:
    """DESIGN §7: 3 an outside system was unreachable, 1 a control failed or blocks, else 0."""
    if unreachable:
        return EXIT_UNREACHABLE
    if blocking or any(VERDICT_ORDER[v] >= VERDICT_ORDER["fail"] for v in verdicts):
        return EXIT_CONTROLS_FAILED
    return EXIT_OK


# --------------------------------------------------------------------------- all three


def run_checks(
    rt: RunPorts,
    model: str,
    *,
    trigger: str = "cli",
    progress: Callable[[str], None] | None = None,
    version: str | None = None,
) -> CheckResult:
    """Open a run, measure every control of the model's tier, close it.

    ``progress`` is called once after opening, once per control and once after closing.
    """
    report = progress or (lambda _message: None)
    ctx = open_run(rt, model, trigger=trigger, version=version)
    report(f"{ctx.model} version {ctx.version_label}")
    if ctx.already_finished:
        return result_of(rt, ctx.run_id)
    outcomes = []
    for control_id in ctx.control_ids:
        outcomes.append(measure_control(rt, ctx, control_id))
        report(control_id)
    result = close_run(rt, ctx, outcomes)
    report("recorded")
    return result


def _json_safe(value: Any) -> Any:
    """What the evidence store can hash: JSON types, no NaN or infinities, no numpy scalars."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
