"""Measurements and thresholds in, verdicts out. Pure: no I/O, no SDK, no clock.

A value *at* a threshold counts as having reached it (``>=`` when higher is worse): a drift share
of exactly 0.4 against ``fail: 0.4`` fails. A measurement that could not be taken is ``error``,
and ``error`` never reads as ``pass``.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import VERDICT_ORDER, Thresholds
from prodcontrol.catalog.types import VerdictValue


class Decided(BaseModel):
    """A verdict with the numbers that decided it, ready to be recorded as evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_id: str
    verdict: VerdictValue
    value: float | None
    warn: float | None
    fail: float | None
    direction: str
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


def decide(
    control_id: str,
    value: float | None,
    thresholds: Thresholds,
    *,
    error: str | None = None,
    not_applicable: str | None = None,
    details: dict[str, Any] | None = None,
) -> Decided:
    """Compare ``value`` with the thresholds in the direction the control declares.

    ``not_applicable`` (the reason the control does not apply to the model) gives the verdict
    ``not_applicable``: no value, never a pass, never an error. An ``error`` wins over it.
    """
    base = {
        "control_id": control_id,
        "value": value,
        "warn": thresholds.warn,
        "fail": thresholds.fail,
        "direction": thresholds.direction,
        "details": details or {},
    }
    if error is not None:
        return Decided(verdict="error", reason=error, **base)
    if not_applicable is not None:
        return Decided(verdict="not_applicable", reason=f"not applicable: {not_applicable}", **base)
    if value is None or math.isnan(value):
        return Decided(verdict="error", reason="no value could be measured", **base)
    unit = f" {thresholds.unit}" if thresholds.unit else ""
    shown = f"{value:.4g}{unit}"
    if _reached(value, thresholds.fail, thresholds.direction):
        return Decided(
            verdict="fail",
            reason=f"{shown} {_cmp(thresholds)} fail threshold {thresholds.fail:g}{unit}",
            **base,
        )
    if thresholds.warn is not None and _reached(value, thresholds.warn, thresholds.direction):
        return Decided(
            verdict="warn",
            reason=f"{shown} {_cmp(thresholds)} warn threshold {thresholds.warn:g}{unit}",
            **base,
        )
    limit = thresholds.warn if thresholds.warn is not None else thresholds.fail
    better = "below" if thresholds.direction == "higher_is_worse" else "above"
    return Decided(verdict="pass", reason=f"{shown} is {better} {limit:g}{unit}", **base)


def _reached(value: float, limit: float, direction: str) -> bool:
    return value >= limit if direction == "higher_is_worse" else value <= limit


def _cmp(thresholds: Thresholds) -> str:
    return "reaches" if thresholds.direction == "higher_is_worse" else "is at or below"


def worst(verdicts: list[VerdictValue]) -> VerdictValue:
    """The most severe verdict of a run; an empty run is an error, not a pass."""
    if not verdicts:
        return "error"
    return max(verdicts, key=lambda v: VERDICT_ORDER[v])
