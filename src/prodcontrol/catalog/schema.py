"""The files a user writes, as pydantic models. Unknown keys are errors everywhere.

``controls.yaml``, ``tiers.yaml`` and ``frameworks.yaml`` form the catalog;
``models.yaml`` and ``people.yaml`` form the inventory. Cross-file checks live in
:mod:`prodcontrol.catalog.validate`.
"""

from __future__ import annotations

import typing
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    model_validator,
)

from prodcontrol.catalog.types import (
    OWNER_ROLES,
    Cron,
    DecisionRight,
    Duration,
    GateMode,
    OwnerRole,
    Role,
    Severity,
    Slug,
    Stage,
    TimeoutAction,
    VerdictValue,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- controls


class Thresholds(Strict):
    """When a measurement warns and fails. ``direction`` says which way is worse."""

    warn: NonNegativeFloat | None = None
    fail: NonNegativeFloat
    direction: Literal["higher_is_worse", "lower_is_worse"] = "higher_is_worse"
    unit: str = ""

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Thresholds:
        if self.warn is None:
            return self
        if self.direction == "higher_is_worse" and self.warn > self.fail:
            raise ValueError(
                f"warn ({self.warn}) must not be above fail ({self.fail}) when higher is worse"
            )
        if self.direction == "lower_is_worse" and self.warn < self.fail:
            raise ValueError(
                f"warn ({self.warn}) must not be below fail ({self.fail}) when lower is worse"
            )
        return self


class SegmentParams(Strict):
    """Judge the control per segment too: each value of each ``segments`` column (``None``: the
    model's ``data.segments``; ``[]``: none) with at least ``min_segment_size`` rows in the
    reference and the current data is measured on its own; the value is the worst of the whole
    data and the judged segments, and the verdict names the worst segment and its size."""

    segments: list[str] | None = None
    min_segment_size: PositiveInt = 100


class DriftParams(SegmentParams):
    """``dataset``: share of drifted columns; ``prediction``: drift of the prediction column."""

    scope: Literal["dataset", "prediction"] = "dataset"
    columns: list[str] | None = None
    stattest: Literal["auto", "ks", "chisquare", "psi", "wasserstein", "jensenshannon"] = "auto"
    column_threshold: NonNegativeFloat | None = None


class DataQualityParams(Strict):
    check: Literal["missing_share", "schema", "out_of_range", "unseen_categories"]
    columns: list[str] | None = None


class PerformanceParams(Strict):
    """Drop of ``metric`` against the approved baseline.

    ``None`` uses the model's baseline metric."""

    metric: str | None = None
    mode: Literal["relative", "absolute"] = "relative"
    higher_is_better: bool = True


PerformanceMetric = Literal["auto", "roc_auc", "accuracy", "mae", "rmse"]


class PerformanceEstimatedParams(SegmentParams):
    """The serving model's metric on current data whose labels have not arrived, estimated from
    its scores (CBPE for classifiers, DLE for regressors), as a drop against the metric on the
    reference data (which has labels). ``metric`` ``auto``: ROC AUC for a classifier, MAE for
    a regressor (the model's ``data.task``)."""

    metric: PerformanceMetric = "auto"
    mode: Literal["relative", "absolute"] = "relative"
    threshold: float = Field(0.5, gt=0, lt=1, description="score at which a row is positive")
    calibration: Literal["isotonic", "none"] = "isotonic"


class PerformanceRealizedParams(SegmentParams):
    """The metric on the predictions logged at scoring time (the current data) whose labels
    have arrived (``data.labels``, joined on ``data.labels.id_column``), as a drop against the
    baseline. ``window``: only predictions scored that recently (the current data's
    ``time_column``); ``max_label_delay``: only labels that arrived that soon after their
    prediction (both time columns). Below ``min_coverage`` labelled predictions the verdict is
    ``not_applicable``: too few labels to judge."""

    metric: PerformanceMetric = "auto"
    mode: Literal["relative", "absolute"] = "relative"
    threshold: float = Field(0.5, gt=0, lt=1, description="score at which a row is positive")
    baseline: Literal["reference", "mlflow"] = "reference"
    window: Duration | None = None
    max_label_delay: Duration | None = None
    min_coverage: float = Field(0.5, gt=0, le=1)


class FreshnessParams(Strict):
    """Age in hours of the newest data, or of the last successful control run."""

    measure: Literal["data_age", "last_successful_run_age"]


def _all_owner_roles() -> list[OwnerRole]:
    return list(typing.get_args(OwnerRole))


def _default_gate_verdicts() -> list[Literal["warn", "fail", "error"]]:
    return ["fail", "error"]


class OwnershipParams(Strict):
    roles: list[OwnerRole] = Field(default_factory=_all_owner_roles)


class ReviewDueParams(Strict):
    """Value is the share of the tier's review cadence elapsed since the last review."""

    checklist: list[str] = Field(default_factory=list)


class ValueParams(Strict):
    """Value capture: the KPI promised in the model's use case, read from MLflow over a window.

    The measured value is the shortfall against the use case's target (0 = target met, 0.1 =
    10 % short when ``comparison`` is relative). ``metric`` ``None`` takes the KPI's MLflow key
    from the model's ``use_case.expected_value.metric_key``. ``source`` says which run logs it:
    the serving version's run, or a run of the business process named by ``run_id``.
    """

    metric: str | None = None
    source: Literal["serving_version_run", "business_run"] = "serving_version_run"
    run_id: str | None = None
    window: Duration = timedelta(days=30)
    aggregate: Literal["mean", "last", "min", "max"] = "mean"
    comparison: Literal["relative", "absolute"] = "relative"

    @model_validator(mode="after")
    def _run_for_business(self) -> ValueParams:
        if self.source == "business_run" and not self.run_id:
            raise ValueError(
                "source business_run needs run_id: the MLflow run the business process logs to"
            )
        return self


class ServingApprovalParams(Strict):
    """Value is 1 when the serving alias points at a version nobody approved (no
    ``prodcontrol.approved=true`` tag and no approved promotion gate), else 0."""


class GenAIEvaluationParams(Strict):
    """Pass rates of MLflow GenAI scorers on the serving version's traces over a window.

    The value is the lowest pass rate among ``scorers`` (1.0 = every assessment passed), so
    its thresholds are ``lower_is_worse``. An assessment passes when its value is ``true``,
    ``yes`` or ``pass`` (MLflow's categorical ratings), or a number at least ``pass_at``.
    ``source`` picks the traces: those of ``mlflow.genai.evaluate`` runs (``evaluations``),
    production traces with feedback (``traces``), or both (``all``). Fewer than
    ``min_assessments`` assessments of a scorer in the window is an ``error``: a model nobody
    evaluated is not a model that passed.
    """

    scorers: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    window: Duration = timedelta(days=7)
    source: Literal["all", "evaluations", "traces"] = "all"
    pass_at: float = 0.5
    min_assessments: PositiveInt = 1


class IncidentReportingParams(Strict):
    """Value is the largest share of the reporting window (EU AI Act Art. 73) elapsed among the
    model's open serious incidents not yet reported: 0 with none, 1.0 at the deadline."""


class ControlBase(Strict):
    id: Slug
    title: str
    description: str = ""
    severity: Severity
    thresholds: Thresholds
    clauses: list[str] = Field(min_length=1)


class DriftControl(ControlBase):
    kind: Literal["drift"]
    params: DriftParams = DriftParams()


class DataQualityControl(ControlBase):
    kind: Literal["data_quality"]
    params: DataQualityParams


class PerformanceControl(ControlBase):
    kind: Literal["performance"]
    params: PerformanceParams = PerformanceParams()


class PerformanceEstimatedControl(ControlBase):
    kind: Literal["performance_estimated"]
    params: PerformanceEstimatedParams = PerformanceEstimatedParams()


class PerformanceRealizedControl(ControlBase):
    kind: Literal["performance_realized"]
    params: PerformanceRealizedParams = PerformanceRealizedParams()


class FreshnessControl(ControlBase):
    kind: Literal["freshness"]
    params: FreshnessParams


class OwnershipControl(ControlBase):
    kind: Literal["ownership"]
    params: OwnershipParams = OwnershipParams()


class ReviewDueControl(ControlBase):
    kind: Literal["review_due"]
    params: ReviewDueParams = ReviewDueParams()


class ValueControl(ControlBase):
    kind: Literal["value"]
    params: ValueParams = ValueParams()


class ServingApprovalControl(ControlBase):
    kind: Literal["serving_approval"]
    params: ServingApprovalParams = ServingApprovalParams()


class GenAIEvaluationControl(ControlBase):
    kind: Literal["genai_evaluation"]
    params: GenAIEvaluationParams

    @model_validator(mode="before")
    @classmethod
    def _pass_rates_are_lower_is_worse(cls, data: object) -> object:
        """Thresholds without a direction read as ``lower_is_worse``: this is a pass rate."""
        limits = data.get("thresholds") if isinstance(data, dict) else None
        if isinstance(data, dict) and isinstance(limits, dict) and "direction" not in limits:
            return data | {"thresholds": limits | {"direction": "lower_is_worse"}}
        return data

    @model_validator(mode="after")
    def _pass_rate_thresholds(self) -> GenAIEvaluationControl:
        limits = self.thresholds
        if limits.direction != "lower_is_worse":
            raise ValueError(
                "a genai_evaluation control measures a pass rate, where lower is worse: set "
                "thresholds.direction: lower_is_worse (e.g. {warn: 0.95, fail: 0.9})"
            )
        if max(limits.fail, limits.warn or 0.0) > 1:
            raise ValueError("pass-rate thresholds are shares between 0 and 1, e.g. fail: 0.9")
        return self


class IncidentReportingControl(ControlBase):
    kind: Literal["incident_reporting"]
    params: IncidentReportingParams = IncidentReportingParams()


Control = Annotated[
    DriftControl
    | DataQualityControl
    | PerformanceControl
    | PerformanceEstimatedControl
    | PerformanceRealizedControl
    | FreshnessControl
    | OwnershipControl
    | ReviewDueControl
    | ValueControl
    | ServingApprovalControl
    | GenAIEvaluationControl
    | IncidentReportingControl,
    Field(discriminator="kind"),
]


class ControlsFile(Strict):
    controls: list[Control] = Field(min_length=1)


# --------------------------------------------------------------------------- frameworks


class Clause(Strict):
    id: Annotated[str, Field(min_length=1)]
    title: str


class Framework(Strict):
    id: Slug
    title: str
    version: str = ""
    clauses: list[Clause] = Field(min_length=1)


class FrameworksFile(Strict):
    frameworks: list[Framework] = Field(min_length=1)


# --------------------------------------------------------------------------- tiers


class Sampling(Strict):
    """The sample the run's one Evidently report is rendered on: at most ``max_rows`` rows of
    each side, seeded, stratified or uniform. Verdicts never use it: they are computed on all
    rows."""

    max_rows: PositiveInt
    seed: int = 0
    strategy: Literal["stratified", "uniform"] = "stratified"
    columns: Literal["all", "flagged"] = Field(
        "all",
        description="the columns a drift control shows one by one in the report: 'all', or "
        "'flagged': the columns that drifted on the full data and the `closest` others to their "
        "threshold (every column's full-data numbers stay in the control's details)",
    )
    closest: NonNegativeInt = Field(
        3, description="with columns: flagged, how many columns that did not drift are shown too"
    )


class GatePolicy(Strict):
    mode: GateMode
    opens_on: list[Literal["warn", "fail", "error"]] = Field(default_factory=_default_gate_verdicts)
    right: DecisionRight = "escalation_outcome"
    timeout: Duration = timedelta(hours=24)
    on_timeout: TimeoutAction = "accept"
    on_reject: Literal["rollback", "suspend"] = "rollback"
    separation_of_duties: bool = False
    action_attempts: int = Field(
        5, ge=1, description="tries of a decided action while MLflow is unreachable, then dead"
    )

    @property
    def required_approvals(self) -> int:
        return {"none": 0, "single": 1, "two_person": 2}[self.mode]


class EscalationStep(Strict):
    """Notify an owner role or a channel ``after`` the finding opened."""

    after: Duration
    role: Role | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> EscalationStep:
        if (self.role is None) == (self.channel is None):
            raise ValueError("give exactly one of 'role' or 'channel' for each escalation step")
        return self


class EscalationPolicy(Strict):
    steps: list[EscalationStep] = Field(min_length=1)
    repeat_every: Duration | None = None
    acknowledge_within: Duration
    decide_within: Duration

    @model_validator(mode="after")
    def _steps_in_order(self) -> EscalationPolicy:
        delays = [step.after for step in self.steps]
        if delays != sorted(delays):
            raise ValueError("escalation steps must be in order of their 'after' delay")
        return self


class DecisionRights(Strict):
    """Which roles may take each kind of decision in this tier (DESIGN §1, decision rights)."""

    deploy: list[Role] = Field(min_length=1)
    change: list[Role] = Field(min_length=1)
    exception: list[Role] = Field(min_length=1)
    escalation_outcome: list[Role] = Field(min_length=1)
    shutdown: list[Role] = Field(min_length=1)
    use_case: list[Role] = Field(min_length=1)
    funding: list[Role] = Field(min_length=1)

    def roles_for(self, right: DecisionRight) -> list[Role]:
        roles: list[Role] = getattr(self, right)
        return roles


class ThresholdOverride(Strict):
    warn: NonNegativeFloat | None = None
    fail: NonNegativeFloat | None = None


class TierPolicy(Strict):
    title: str
    schedule: Cron
    timezone: str = "UTC"
    controls: list[Slug] = Field(min_length=1)
    thresholds: dict[str, ThresholdOverride] = Field(default_factory=dict)
    sampling: Sampling
    gate: GatePolicy
    fail_closed: bool
    escalation: EscalationPolicy
    decision_rights: DecisionRights
    review_every: Duration
    waiver_max: Duration = timedelta(days=90)
    risk_channel: str
    evidence: Literal["summary", "full"] = "full"


class TiersFile(Strict):
    tiers: dict[Slug, TierPolicy] = Field(min_length=1)


# --------------------------------------------------------------------------- inventory


class Person(Strict):
    id: Slug
    name: str
    email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    slack_id: Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$")] | None = None
    roles: list[Role] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reachable(self) -> Person:
        if self.email is None and self.slack_id is None:
            raise ValueError("give a slack_id or an email so escalations can reach this person")
        return self


class PeopleFile(Strict):
    people: list[Person] = Field(min_length=1)


class Owners(Strict):
    """Person ids by owner role; a missing role blocks pilot and production."""

    business_outcome: Slug | None = None
    data_domain: Slug | None = None
    model_behaviour: Slug | None = None
    workflow_impact: Slug | None = None
    operating_risk: Slug | None = None

    def assigned(self) -> dict[str, str]:
        """Role -> person id, for the roles that name somebody."""
        return {role: pid for role in OWNER_ROLES if (pid := getattr(self, role)) is not None}


class FileSource(Strict):
    type: Literal["file"]
    path: str
    format: Literal["csv", "parquet"] | None = None
    time_column: str | None = None
    window: Duration | None = None


class SqlSource(Strict):
    type: Literal["sql"]
    url: str
    query: str
    time_column: str | None = None
    window: Duration | None = None


class MlflowArtifactSource(Strict):
    """An artifact file of a run; ``run_id`` ``None`` means the serving version's run."""

    type: Literal["mlflow_artifact"]
    artifact_path: str
    run_id: str | None = None


class MlflowDatasetSource(Strict):
    type: Literal["mlflow_dataset"]
    name: str
    context: str | None = None
    run_id: str | None = None


DataSource = Annotated[
    FileSource | SqlSource | MlflowArtifactSource | MlflowDatasetSource,
    Field(discriminator="type"),
]


LabelSourceSpec = Annotated[FileSource | SqlSource, Field(discriminator="type")]


class LabelsSpec(Strict):
    """Where the labels that arrive after scoring are, and how they join the predictions.

    ``id_column`` is in the current data (the predictions logged at scoring time) and in the
    labels; ``label_column`` (default: the model's ``target_column``) holds the outcome;
    ``time_column``: when each label arrived (for ``max_label_delay``)."""

    source: LabelSourceSpec
    id_column: str
    label_column: str | None = None
    time_column: str | None = None


ColumnKind = Literal["numeric", "categorical"]


class DataSpec(Strict):
    """Where a model's data comes from, and its data contract.

    The declared ``numerical`` and ``categorical`` columns are the model's input features: drift,
    missing values, schema, out-of-range and unseen categories look at exactly those (a control's
    ``params.columns`` narrows them further). The target and prediction columns are never
    features. A model that declares no features falls back to the columns both datasets share,
    less the target and prediction columns. :meth:`features` is the one place that decides.
    """

    reference: DataSource
    current: DataSource
    prediction_column: str | None = None
    target_column: str | None = None
    numerical: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)
    task: Literal["classification", "regression"] | None = Field(
        None, description="what the performance controls measure: needed by them"
    )
    score_column: str | None = Field(
        None, description="a classifier's predicted probability of the positive class"
    )
    labels: LabelsSpec | None = None
    segments: list[str] = Field(
        default_factory=list, description="columns whose values the controls judge one by one"
    )

    @property
    def declares_features(self) -> bool:
        return bool(self.numerical or self.categorical)

    def non_features(self) -> set[str]:
        """The target, prediction, score and label id columns: never features."""
        ids = {self.labels.id_column} if self.labels else set()
        named = (self.target_column, self.prediction_column, self.score_column)
        return {c for c in named if c} | ids

    def features(self, available: list[str] | None = None) -> list[str]:
        """The model's input features, in declared order (numerical first).

        Without declared features: the ``available`` columns (the columns both datasets share)
        less the target and prediction columns.
        """
        named = self.numerical + self.categorical if self.declares_features else available or []
        return [c for c in dict.fromkeys(named) if c not in self.non_features()]

    def declared_kinds(self) -> dict[str, ColumnKind]:
        """Each declared feature's kind: what the data must hold for it."""
        kinds: dict[str, ColumnKind] = dict.fromkeys(self.numerical, "numeric")
        kinds.update(dict.fromkeys(self.categorical, "categorical"))
        return kinds

    def declared_columns(self) -> list[str]:
        """Every column the contract names (features, prediction, target): what to read."""
        outputs = (self.prediction_column, self.score_column, self.target_column)
        ids = (self.labels.id_column,) if self.labels else ()
        named = self.features() + [c for c in (*outputs, *ids) if c] + self.segments
        return list(dict.fromkeys(named))


class Baseline(Strict):
    """Where the approved baseline metrics come from."""

    metric: str
    source: Literal["approved_version", "tagged_version"] = "approved_version"
    tag: str = "prodcontrol.baseline"


class ExpectedValue(Strict):
    """The value a use case promises: a named business KPI, where MLflow logs it, a target."""

    kpi: Annotated[str, Field(min_length=1)]
    metric_key: Annotated[str, Field(min_length=1)]
    target: float
    higher_is_better: bool = True
    review_date: date


class UseCase(Strict):
    """Why a model exists; approved (use-case and funding rights) before leaving experimentation."""

    purpose: Annotated[str, Field(min_length=1)]
    expected_value: ExpectedValue
    data_used: list[str] = Field(min_length=1)
    tier_requested: Slug


class GenAISpec(Strict):
    """Where a generative model's evaluations live in MLflow.

    The serving version is linked to its MLflow LoggedModel (the version's ``model_id``, or
    the ``models:/m-...`` source it was registered from); the genai-evaluation controls read
    the traces MLflow links to that LoggedModel (``mlflow.genai.evaluate(model_id=...)``,
    ``mlflow.set_active_model(model_id=...)``). ``experiment`` (a name) is where they are
    logged; ``None`` is the LoggedModel's own experiment.
    """

    experiment: Annotated[str, Field(min_length=1)] | None = None


class ModelEntry(Strict):
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    tier: Slug
    stage: Stage
    serving_alias: Slug = "champion"
    owners: Owners = Owners()
    data: DataSpec | None = None
    baseline: Baseline | None = None
    last_review: date | None = None
    use_case: UseCase | None = None
    genai: GenAISpec | None = None


class ModelsFile(Strict):
    models: list[ModelEntry] = Field(min_length=1)


VERDICT_ORDER: dict[VerdictValue, int] = {
    "not_applicable": -1,
    "pass": 0,
    "warn": 1,
    "fail": 2,
    "error": 3,
}
