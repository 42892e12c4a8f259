"""The ``performance_estimated`` and ``performance_realized`` controls on loaded data. Pure:
pandas frames and the catalog's models in, a value and its explanation out (no I/O).

* :func:`estimated`: the metric of the serving model on current data without labels (CBPE or
  DLE, :mod:`prodcontrol.engine.performance`), as a drop against the same metric on the
  reference data, whose labels are known.
* :func:`realized`: the labels that arrived later joined to the predictions logged at scoring
  time (the current data) by id, within the time windows; the coverage (labelled share of the
  predictions); the metric on the labelled rows as a drop against the baseline. Under
  ``min_coverage`` the control does not apply yet (``not_applicable``).

Both judge segments (:mod:`prodcontrol.engine.segments`) when the control or the model names
segment columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import (
    DataSpec,
    LabelsSpec,
    PerformanceEstimatedParams,
    PerformanceRealizedParams,
)
from prodcontrol.catalog.types import format_duration
from prodcontrol.engine import performance as perf
from prodcontrol.engine.segments import measure_segments, segment_details, worst_value

CBPE = "CBPE (confidence-based performance estimation) on the model's scores"
DLE = "DLE (direct loss estimation): a loss model fitted on the reference data"


class Assessed(BaseModel):
    """A performance control's value (a drop against the baseline), or why it does not apply."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | None = None
    not_applicable: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


def metric_for(metric: str, data: DataSpec) -> perf.Metric:
    """The metric a control measures on this model; a metric of the other task is an error."""
    task = data.task
    if task is None:
        raise perf.PerformanceError("the model declares no data.task")
    names = perf.CLASSIFICATION_METRICS if task == "classification" else perf.REGRESSION_METRICS
    if metric == "auto":
        return names[0]
    if metric not in names:
        raise perf.PerformanceError(
            f"metric '{metric}' is not a {task} metric; a {task} model is measured with "
            f"{' or '.join(names)}: set params.metric (or auto) or data.task in models.yaml"
        )
    return metric


def _column(frame: Any, column: str | None, side: str, what: str, key: str) -> Any:
    if not column:
        raise perf.PerformanceError(f"{what}: set {key} in models.yaml")
    if column not in frame.columns:
        shown = ", ".join(map(str, list(frame.columns)[:12]))
        raise perf.PerformanceError(
            f"{key} '{column}' is not in the {side} data (its columns: {shown}); fix {key} in "
            "models.yaml or the data"
        )
    return frame[column]


def outputs_column(data: DataSpec) -> tuple[str | None, str, str]:
    """The column a metric reads the model's output from, its models.yaml key and the words
    for a missing one."""
    if data.task == "classification":
        return (
            data.score_column,
            "data.score_column",
            "a classifier's performance is measured on its scores (the predicted probability "
            "of the positive class), and the model declares no score column",
        )
    return data.prediction_column, "data.prediction_column", "a regressor needs its predictions"


def _outputs(frame: Any, data: DataSpec, side: str) -> Any:
    column, key, what = outputs_column(data)
    return _column(frame, column, side, what, key)


def _targets(frame: Any, data: DataSpec, side: str, column: str | None = None) -> Any:
    key = "data.labels.label_column" if column else "data.target_column"
    what = "the reference data needs the true outcome to compare against"
    return _column(frame, column or data.target_column, side, what, key)


# --------------------------------------------------------------------------- estimated


class _Estimator:
    """Fitted once on the whole reference data; estimates on any rows of the current data."""

    def __init__(
        self,
        metric: perf.Metric,
        params: PerformanceEstimatedParams,
        data: DataSpec,
        ref: Any,
        regressor: perf.LossRegressor | None,
    ) -> None:
        self.metric, self.params, self.data = metric, params, data
        labels, outputs = _targets(ref, data, "reference"), _outputs(ref, data, "reference")
        self.details: dict[str, Any] = {"metric": metric}
        self.calibrator: perf.Isotonic | None = None
        self.loss: perf.LossModel | None = None
        if data.task == "classification":
            self.details["method"] = CBPE
            self.details["calibration"] = params.calibration
            self.details["calibration_error_reference"] = perf.calibration_error(outputs, labels)
            if params.calibration == "isotonic":
                self.calibrator = perf.Isotonic.fit(outputs, labels)
        else:
            self.features = [
                c for c in data.numerical if c in ref.columns and c not in data.non_features()
            ]
            self.loss = perf.LossModel.fit(
                metric, ref[self.features], outputs, labels, regressor=regressor
            )
            self.details["method"] = f"{DLE} ({self.loss.regressor})"
            self.details["loss_model_inputs"] = [*self.features, str(data.prediction_column)]

    def baseline(self, ref: Any) -> float:
        labels, outputs = _targets(ref, self.data, "reference"), _outputs(ref, self.data, "ref")
        return perf.realized(self.metric, labels, outputs, threshold=self.params.threshold)

    def estimate(self, current: Any) -> float:
        outputs = _outputs(current, self.data, "current")
        if self.loss is not None:
            missing = [c for c in self.features if c not in current.columns]
            if missing:
                raise perf.PerformanceError(
                    f"the current data lacks the feature(s) {', '.join(missing)} the loss "
                    "model reads"
                )
            return self.loss.estimate(current[self.features], outputs)
        return perf.cbpe(
            self.metric, outputs, calibrator=self.calibrator, threshold=self.params.threshold
        )


def estimated(
    params: PerformanceEstimatedParams,
    data: DataSpec,
    reference: Any,
    current: Any,
    *,
    loss_regressor: perf.LossRegressor | None = None,
) -> Assessed:
    """The estimated metric on the current data as a drop against the reference data's;
    ``loss_regressor`` is DLE's loss model (default: :class:`~.performance.QuadraticRidge`)."""
    if data.task is None:
        return Assessed(not_applicable=_no_task())
    metric = metric_for(params.metric, data)
    estimator = _Estimator(metric, params, data, reference, loss_regressor)
    baseline, estimate = estimator.baseline(reference), estimator.estimate(current)
    value = perf.drop(metric, estimate, baseline, mode=params.mode)
    details = {
        **estimator.details,
        "estimated": estimate,
        "baseline": baseline,
        "baseline_source": "the reference data (labels known)",
        "mode": params.mode,
        "reference_rows": len(reference),
        "current_rows": len(current),
    }

    def per_segment(ref: Any, cur: Any, _column: str) -> float:
        return perf.drop(metric, estimator.estimate(cur), estimator.baseline(ref), mode=params.mode)

    return _with_segments(
        Assessed(value=value, details=details),
        params.segments,
        data,
        frames=(reference, current),
        measure=per_segment,
        min_size=params.min_segment_size,
    )


def _no_task() -> str:
    return (
        "the model declares no data.task (classification or regression) in models.yaml; the "
        "performance controls on data need it"
    )


# --------------------------------------------------------------------------- realized


class Joined(BaseModel):
    """The predictions of the window with the labels that joined them."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    frame: Any
    predictions: int
    labelled: int
    details: dict[str, Any]

    @property
    def coverage(self) -> float:
        return self.labelled / self.predictions if self.predictions else 0.0


def _times(frame: Any, column: str, side: str, key: str) -> Any:
    import pandas as pd

    values = _column(frame, column, side, f"{key} is needed", key)
    return pd.to_datetime(values, utc=True, errors="coerce")


def join_labels(
    params: PerformanceRealizedParams,
    data: DataSpec,
    labels_spec: LabelsSpec,
    current: Any,
    labels: Any,
    *,
    now: datetime,
    prediction_time: str | None,
) -> Joined:
    """Left join of the labels on the predictions by ``id_column``; a prediction is labelled
    when its label arrived within ``max_label_delay`` (when given) and not before it."""
    import pandas as pd

    key = labels_spec.id_column
    label_column = labels_spec.label_column or data.target_column
    _column(current, key, "current", "the predictions need their id", "data.labels.id_column")
    _column(labels, key, "labels", "the labels need the prediction id", "data.labels.id_column")
    _targets(labels, data, "labels", label_column)
    predictions = current
    details: dict[str, Any] = {"id_column": key, "label_column": label_column}
    if params.window is not None:
        if not prediction_time:
            raise perf.PerformanceError(
                f"params.window {format_duration(params.window)} needs the time each prediction "
                "was scored: give data.current.time_column in models.yaml"
            )
        scored = _times(current, prediction_time, "current", "data.current.time_column")
        predictions = current[(scored >= pd.Timestamp(now - params.window)).to_numpy()]
        details["window"] = format_duration(params.window)
    label_time = labels_spec.time_column
    wanted = [key, str(label_column), *([label_time] if label_time else [])]
    arrived = labels[list(dict.fromkeys(wanted))].dropna(subset=[label_column])
    if label_time:
        at = _times(arrived, label_time, "labels", "data.labels.time_column")
        arrived = arrived.assign(_label_at=at).sort_values("_label_at", kind="mergesort")
    duplicates = int(arrived.duplicated(subset=[key]).sum())
    arrived = arrived.drop_duplicates(subset=[key], keep="last")  # the latest label counts
    label_name = "_label"
    arrived = arrived.rename(columns={label_column: label_name})
    merged = predictions.merge(arrived, on=key, how="left", validate="many_to_one")
    has_label = merged[label_name].notna()
    if params.max_label_delay is not None:
        if not (prediction_time and labels_spec.time_column):
            raise perf.PerformanceError(
                "params.max_label_delay needs when each prediction was scored and when each "
                "label arrived: give data.current.time_column and data.labels.time_column"
            )
        scored = _times(merged, prediction_time, "current", "data.current.time_column")
        delay = merged["_label_at"] - scored
        in_time = (delay >= pd.Timedelta(0)) & (delay <= pd.Timedelta(params.max_label_delay))
        details["labels_outside_delay"] = int((has_label & ~in_time).sum())
        details["max_label_delay"] = format_duration(params.max_label_delay)
        has_label &= in_time
    details["duplicate_labels"] = duplicates
    details["labels_without_prediction"] = int((~arrived[key].isin(predictions[key])).sum())
    labelled = merged[has_label.to_numpy()].copy()
    if label_column in labelled.columns and label_column != label_name:
        labelled = labelled.drop(columns=[label_column])
    labelled = labelled.rename(columns={label_name: label_column})
    return Joined(
        frame=labelled, predictions=len(predictions), labelled=len(labelled), details=details
    )


def realized(
    params: PerformanceRealizedParams,
    data: DataSpec,
    joined: Joined,
    reference: Any | None,
    *,
    mlflow_baseline: float | None = None,
) -> Assessed:
    """The metric on the labelled predictions against the baseline: the reference data's
    (``baseline: reference``) or the approved version's from MLflow (``mlflow_baseline``)."""
    if data.task is None:
        return Assessed(not_applicable=_no_task())
    metric = metric_for(params.metric, data)
    labels_spec = data.labels
    label_column = (labels_spec.label_column if labels_spec else None) or data.target_column
    coverage = {
        "predictions": joined.predictions,
        "labelled": joined.labelled,
        "coverage": joined.coverage,
        "min_coverage": params.min_coverage,
        **joined.details,
    }
    if joined.predictions == 0:
        return Assessed(not_applicable="no predictions in the window", details=coverage)
    if joined.coverage < params.min_coverage:
        return Assessed(
            not_applicable=(
                f"label coverage {joined.coverage:.1%} ({joined.labelled} of "
                f"{joined.predictions} predictions labelled) is below min_coverage "
                f"{params.min_coverage:.0%}; the labels have not arrived yet"
            ),
            details=coverage,
        )

    def measured(frame: Any) -> float:
        return perf.realized(
            metric,
            _targets(frame, data, "labels", label_column),
            _outputs(frame, data, "current"),
            threshold=params.threshold,
        )

    def baseline_of(ref: Any) -> float:
        if mlflow_baseline is not None:
            return mlflow_baseline
        if ref is None:
            raise perf.PerformanceError("no reference data for the baseline")
        return perf.realized(
            metric,
            _targets(ref, data, "reference"),
            _outputs(ref, data, "reference"),
            threshold=params.threshold,
        )

    current_value, baseline = measured(joined.frame), baseline_of(reference)
    value = perf.drop(metric, current_value, baseline, mode=params.mode)
    details = {
        "metric": metric,
        "method": "realized: labels joined to the predictions logged at scoring time",
        "realized": current_value,
        "baseline": baseline,
        "baseline_source": (
            "the approved version's run in MLflow"
            if mlflow_baseline is not None
            else "the reference data (labels known)"
        ),
        "mode": params.mode,
        **coverage,
    }

    def per_segment(ref: Any, cur: Any, _column: str) -> float:
        return perf.drop(metric, measured(cur), baseline_of(ref), mode=params.mode)

    ref_frame = reference if reference is not None else joined.frame
    return _with_segments(
        Assessed(value=value, details=details),
        params.segments,
        data,
        frames=(ref_frame, joined.frame),
        measure=per_segment,
        min_size=params.min_segment_size,
    )


# --------------------------------------------------------------------------- segments


def _with_segments(
    assessed: Assessed,
    named: list[str] | None,
    data: DataSpec,
    *,
    frames: tuple[Any, Any],
    measure: Callable[[Any, Any, str], float],
    min_size: int,
) -> Assessed:
    """Judge each segment too; the value becomes the worst of the whole data and the segments."""
    columns = list(named) if named is not None else list(data.segments)
    value, details = assessed.value, assessed.details
    if not columns or value is None:
        return assessed
    reference, current = frames
    for column in columns:
        for side, frame in (("reference", reference), ("current", current)):
            if column not in frame.columns:
                raise perf.PerformanceError(
                    f"segment column '{column}' is not in the {side} data; fix data.segments "
                    "in models.yaml or params.segments in controls.yaml"
                )
    segments = measure_segments(
        reference,
        current,
        columns,
        min_size=min_size,
        measure=measure,
        refused=(perf.PerformanceError,),
    )
    worst, segment = worst_value(value, segments, higher_is_worse=True)
    return Assessed(
        value=worst, details=details | segment_details(value, segments, segment, min_size=min_size)
    )


__all__ = ["Assessed", "Joined", "estimated", "join_labels", "metric_for", "realized"]
