"""Measurements that need no data library: performance against the baseline, freshness,
ownership readiness and review cadence. Each returns the number a verdict compares."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.schema import ModelEntry, PerformanceParams


def performance_drop(current: float, baseline: float, params: PerformanceParams) -> float:
    """How much worse ``current`` is than ``baseline``; negative when it improved.

    Relative drops are a share of the baseline (0.05 = 5 % worse), absolute drops are in the
    metric's own unit. ``higher_is_better`` false covers error metrics such as RMSE.
    """
    worse_by = baseline - current if params.higher_is_better else current - baseline
    if params.mode == "absolute":
        return worse_by
    if baseline == 0:
        raise ValueError("the baseline metric is 0; use mode: absolute for this control")
    return worse_by / abs(baseline)


def age_hours(newest: datetime, now: datetime) -> float:
    """Hours between the newest item and now; never negative (clock skew reads as fresh)."""
    return max(0.0, (now - newest).total_seconds() / 3600)


def missing_owners(model: ModelEntry, roles: list[str]) -> list[str]:
    return [role for role in missing_owner_roles(model) if role in roles]


def review_elapsed(last_review: date, now: datetime, every: timedelta) -> float:
    """Share of the review cadence elapsed since the last review: 1.0 means due today."""
    elapsed = now.date() - last_review
    return max(0.0, elapsed / every)
