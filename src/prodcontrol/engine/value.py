"""Value capture: how far a model's business KPI falls short of the target its use case promised.

:func:`kpi_shortfall` is the pure part (points in, one number out). :func:`measure_value` reads
the KPI through the :class:`~prodcontrol.ports.MetricSource` port (MLflow in production) and
returns a :class:`~prodcontrol.ports.Measurement`; a KPI with no points in the window, or a
serving version with no run, is an ``error`` measurement, never a pass. An unreachable MLflow
raises :class:`~prodcontrol.errors.UnreachableError` so the caller can mark the run unreachable
(exit code 3) as well as record the ``error`` verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from prodcontrol.catalog.schema import (
    Control,
    EscalationPolicy,
    EscalationStep,
    ExpectedValue,
    ModelEntry,
    ValueControl,
    ValueParams,
)
from prodcontrol.errors import ProdControlError, UnreachableError
from prodcontrol.ports import Measurement, MetricPoint, MetricSource


def aggregate(points: Sequence[MetricPoint], how: str) -> float:
    """Mean, last (newest), min or max of the points' values."""
    values = [p.value for p in points]
    if how == "last":
        return max(points, key=lambda p: (p.at, p.step)).value
    if how == "min":
        return min(values)
    if how == "max":
        return max(values)
    return fmean(values)


def shortfall(observed: float, expected: ExpectedValue, comparison: str) -> float:
    """How far ``observed`` is short of the target; 0 when met or beaten, never negative.

    Relative shortfalls are a share of the target (0.1 = 10 % short); absolute ones are in the
    KPI's unit. ``higher_is_better`` false covers KPIs such as cost or loss.
    """
    short = expected.target - observed if expected.higher_is_better else observed - expected.target
    short = max(0.0, short)
    if comparison == "absolute":
        return short
    if expected.target == 0:
        raise ValueError("the KPI target is 0; use comparison: absolute for this control")
    return short / abs(expected.target)


def kpi_shortfall(
    points: Sequence[MetricPoint],
    expected: ExpectedValue,
    params: ValueParams,
    now: datetime,
) -> tuple[float | None, dict[str, Any], str | None]:
    """``(shortfall, details, error)`` over the points logged within ``params.window`` of now."""
    since = now - params.window
    in_window = [p for p in points if since <= p.at <= now]
    details: dict[str, Any] = {
        "kpi": expected.kpi,
        "metric_key": expected.metric_key,
        "target": expected.target,
        "higher_is_better": expected.higher_is_better,
        "window_start": since.isoformat(),
        "points": len(in_window),
        "aggregate": params.aggregate,
        "comparison": params.comparison,
    }
    if not in_window:
        return (
            None,
            details,
            (
                f"no value of '{expected.metric_key}' logged in the last "
                f"{params.window.days} day(s); log the KPI to MLflow or widen the window"
            ),
        )
    observed = aggregate(in_window, params.aggregate)
    details["observed"] = observed
    try:
        return shortfall(observed, expected, params.comparison), details, None
    except ValueError as exc:
        return None, details, str(exc)


def expected_for(control: ValueControl, model: ModelEntry) -> ExpectedValue | None:
    """The model's promised KPI, with the control's metric key when it names one."""
    if model.use_case is None:
        return None
    expected = model.use_case.expected_value
    if control.params.metric:
        expected = expected.model_copy(update={"metric_key": control.params.metric})
    return expected


def measure_value(
    control: ValueControl, model: ModelEntry, metrics: MetricSource, now: datetime
) -> Measurement:
    """Read the KPI from MLflow and measure the shortfall against the use case's target."""
    expected = expected_for(control, model)
    if expected is None:
        return Measurement(
            control_id=control.id,
            value=None,
            error=f"model '{model.name}' has no use_case with an expected value in models.yaml",
        )
    try:
        run_id = control.params.run_id
        if control.params.source == "serving_version_run":
            run_id = metrics.resolve_alias(model.name, model.serving_alias).run_id
        if run_id is None:
            raise ProdControlError(
                f"the '{model.serving_alias}' version of {model.name} has no MLflow run"
            )
        points = metrics.metric_history(run_id, expected.metric_key)
    except UnreachableError:
        raise
    except ProdControlError as exc:
        return Measurement(control_id=control.id, value=None, error=str(exc))
    value, details, error = kpi_shortfall(points, expected, control.params, now)
    details["run_id"] = run_id
    return Measurement(control_id=control.id, value=value, details=details, error=error)


def escalation_policy(policy: EscalationPolicy, control: Control | None) -> EscalationPolicy:
    """The chain for a finding of ``control``: value shortfalls reach the business-outcome owner
    at once, ahead of the tier's chain (the KPI is theirs); other controls keep the tier's."""
    if not isinstance(control, ValueControl):
        return policy
    first = EscalationStep(after=timedelta(0), role="business_outcome")
    if first in policy.steps:
        return policy
    return policy.model_copy(update={"steps": [first, *policy.steps]})
