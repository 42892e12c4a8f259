"""GenAI evaluation pass rates, pure: assessments in, the worst scorer's pass rate out.

An assessment passes when its value is ``true``, ``yes`` or ``pass`` (MLflow's categorical
ratings, any case), or a number at least ``pass_at``; ``false``, ``no``, ``fail`` and smaller
numbers fail. A scorer that errored on a trace, or returned something else (free text), is
counted apart and never as a pass. The measured value is the lowest pass rate among the
control's scorers; fewer than ``min_assessments`` judged assessments of any scorer is an
``error`` (nobody evaluated the model in the window), never a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prodcontrol.catalog.schema import GenAIEvaluationParams
from prodcontrol.ports import Assessment

PASSING = frozenset({"yes", "pass", "true"})
FAILING = frozenset({"no", "fail", "false"})


def passed(value: bool | float | str | None, pass_at: float) -> bool | None:
    """Whether one assessment value passes; ``None`` when it cannot be judged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value) >= pass_at
    if isinstance(value, str):
        word = value.strip().lower()
        if word in PASSING:
            return True
        if word in FAILING:
            return False
    return None


def selected(items: Sequence[Assessment], source: str) -> list[Assessment]:
    """The assessments of evaluation runs, of served traces, or all of them."""
    if source == "evaluations":
        return [a for a in items if a.evaluation_run is not None]
    if source == "traces":
        return [a for a in items if a.evaluation_run is None]
    return list(items)


def pass_rates(
    items: Sequence[Assessment],
    params: GenAIEvaluationParams,
    *,
    since: datetime,
    until: datetime,
) -> tuple[float | None, dict[str, Any], str | None]:
    """``(lowest pass rate, details, error)`` over the assessments of the window."""
    chosen = [a for a in selected(items, params.source) if since <= a.at <= until]
    per_scorer: dict[str, dict[str, Any]] = {}
    for name in params.scorers:
        mine = [a for a in chosen if a.name == name]
        verdicts = [passed(a.value, params.pass_at) for a in mine if a.error is None]
        judged = [v for v in verdicts if v is not None]
        per_scorer[name] = {
            "assessments": len(judged),
            "passed": sum(judged),
            "pass_rate": sum(judged) / len(judged) if judged else None,
            "scorer_errors": sum(1 for a in mine if a.error is not None),
            "unjudged": sum(1 for v in verdicts if v is None),
            "traces": len({a.trace_id for a in mine}),
        }
    details: dict[str, Any] = {
        "scorers": per_scorer,
        "window_start": since.isoformat(),
        "window_end": until.isoformat(),
        "source": params.source,
        "pass_at": params.pass_at,
        "evaluation_runs": sorted({a.evaluation_run for a in chosen if a.evaluation_run}),
    }
    short = {n: s["assessments"] for n, s in per_scorer.items()}
    short = {n: count for n, count in short.items() if count < params.min_assessments}
    if short:
        listed = ", ".join(f"{name} ({count})" for name, count in short.items())
        return (
            None,
            details,
            f"too few assessments in the window to judge: {listed}, at least "
            f"{params.min_assessments} needed; log evaluations (mlflow.genai.evaluate with "
            "model_id=...) or trace feedback (mlflow.log_feedback), or widen the window",
        )
    rates = {n: float(s["pass_rate"]) for n, s in per_scorer.items()}
    worst = min(rates, key=lambda n: (rates[n], n))
    details["worst_scorer"] = worst
    return rates[worst], details, None
