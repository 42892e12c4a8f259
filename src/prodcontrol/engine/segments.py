"""Segments: a drift or performance control judged on each value of a column, not only on the
whole data. Pure: pandas frames in, numbers out.

A segment is one value of one segment column (a missing value is the segment ``(missing)``).
It is judged when it has at least ``min_size`` rows in the reference and in the current data;
otherwise it is listed with the reason and not judged (a handful of rows says nothing). The
control's value is the worst of the whole data's and the judged segments' values, so a drift
or a drop confined to one segment is not averaged away; the verdict names that segment and its
size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

MISSING = "(missing)"


class SegmentResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    segment: str
    reference_rows: int
    current_rows: int
    value: float | None = None
    not_judged: str | None = None

    @property
    def judged(self) -> bool:
        return self.value is not None


def _levels(frame: Any, column: str) -> Any:
    return frame[column].astype("string").fillna(MISSING)


def measure_segments(
    reference: Any,
    current: Any,
    columns: list[str],
    *,
    min_size: int,
    measure: Callable[[Any, Any, str], float],
    refused: tuple[type[Exception], ...],
) -> list[SegmentResult]:
    """Each value of each column seen in the current data, measured by ``measure(reference
    rows, current rows, column)``; an exception of a ``refused`` type leaves it not judged."""
    results = []
    for column in columns:
        ref_levels, cur_levels = _levels(reference, column), _levels(current, column)
        ref_counts = ref_levels.value_counts()
        for level, n_current in cur_levels.value_counts().sort_index().items():
            n_reference = int(ref_counts.get(level, 0))
            base = {
                "column": column,
                "segment": str(level),
                "reference_rows": n_reference,
                "current_rows": int(n_current),
            }
            small = [
                f"{n} rows in the {side} data"
                for side, n in (("reference", n_reference), ("current", int(n_current)))
                if n < min_size
            ]
            if small:
                reason = f"{' and '.join(small)}, below min_segment_size {min_size}"
                results.append(SegmentResult(**base, not_judged=reason))
                continue
            try:
                value = measure(
                    reference[(ref_levels == level).to_numpy()],
                    current[(cur_levels == level).to_numpy()],
                    column,
                )
            except refused as exc:
                results.append(SegmentResult(**base, not_judged=str(exc)))
                continue
            results.append(SegmentResult(**base, value=float(value)))
    return results


def worst_value(
    overall: float, segments: list[SegmentResult], *, higher_is_worse: bool
) -> tuple[float, SegmentResult | None]:
    """The control's value (the worst of the whole data and the judged segments) and the worst
    judged segment (``None`` when no segment was judged)."""
    judged = [s for s in segments if s.value is not None]
    if not judged:
        return overall, None

    def badness(s: SegmentResult) -> float:
        value = float(s.value if s.value is not None else 0.0)
        return value if higher_is_worse else -value

    worst = max(judged, key=badness)
    worst_v = float(worst.value if worst.value is not None else overall)
    value = max(overall, worst_v) if higher_is_worse else min(overall, worst_v)
    return value, worst


def segment_details(
    overall: float,
    segments: list[SegmentResult],
    worst: SegmentResult | None,
    *,
    min_size: int,
) -> dict[str, Any]:
    """What the evidence keeps: every segment with its size and value or why it was not judged,
    and the worst one."""
    details: dict[str, Any] = {
        "overall_value": overall,
        "min_segment_size": min_size,
        "segments": [s.model_dump() for s in segments],
        "segments_judged": sum(1 for s in segments if s.judged),
        "segments_not_judged": sum(1 for s in segments if not s.judged),
    }
    if worst is not None:
        details["worst_segment"] = {
            "column": worst.column,
            "segment": worst.segment,
            "rows": worst.current_rows,
            "reference_rows": worst.reference_rows,
            "value": worst.value,
        }
    return details


def segment_note(details: dict[str, Any]) -> str | None:
    """The verdict's words about segments: the worst one, its size, and the whole data's value."""
    if "segments" not in details:
        return None
    worst = details.get("worst_segment")
    judged, skipped = details.get("segments_judged", 0), details.get("segments_not_judged", 0)
    size = details.get("min_segment_size")
    not_judged = f"; {skipped} segment(s) under {size} rows not judged" if skipped else ""
    if not worst:
        return f"no segment judged (each under {size} rows or not measurable){not_judged}"
    overall = details.get("overall_value")
    shown = f"{overall:.4g}" if isinstance(overall, int | float) else "n/a"
    return (
        f"worst segment {worst['column']}={worst['segment']} ({worst['rows']} rows): "
        f"{worst['value']:.4g}; whole data {shown}; {judged} segment(s) judged{not_judged}"
    )


__all__ = ["SegmentResult", "measure_segments", "segment_details", "segment_note", "worst_value"]
