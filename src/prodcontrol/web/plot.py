"""A control's score over time against its thresholds, as inline SVG built on the server.

No JavaScript and no build step: the browser draws it, and the markup is plain enough for a
test to read (each point carries its verdict and value in ``data-`` attributes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 460, 190
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 26, 28
COLORS = {
    "not_applicable": "#8a8f98",
    "pass": "#2e7d32",
    "warn": "#c79100",
    "fail": "#c62828",
    "error": "#6a1b9a",
}


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float | None
    verdict: str


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def score_plot(
    title: str, points: Sequence[Point], warn: float | None, fail: float | None, unit: str = ""
) -> str:
    """SVG of ``points`` (oldest first) with dashed warn and fail lines."""
    values = [p.value for p in points if p.value is not None]
    limits = [t for t in (warn, fail) if t is not None]
    low = min([0.0, *values, *limits])
    high = max([*values, *limits, low + 1e-9])
    high += (high - low) * 0.1
    times = [p.at.timestamp() for p in points]
    t0, t1 = (min(times), max(times)) if times else (0.0, 1.0)

    def x(ts: float) -> float:
        return _scale(ts, t0, t1, LEFT + 8, WIDTH - RIGHT - 8)

    def y(value: float) -> float:
        return _scale(value, low, high, HEIGHT - BOTTOM, TOP)

    parts = [
        f'<svg class="score-plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)} over time">',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="600">{escape(title)}</text>',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#9aa3ad"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#9aa3ad"/>',
        f'<text x="{LEFT - 4}" y="{y(low) + 4:.1f}" font-size="10" text-anchor="end">'
        f"{low:.3g}</text>",
        f'<text x="{LEFT - 4}" y="{y(high) + 4:.1f}" font-size="10" text-anchor="end">'
        f"{high:.3g}</text>",
    ]
    for name, limit, color in (("warn", warn, COLORS["warn"]), ("fail", fail, COLORS["fail"])):
        if limit is not None:
            parts.append(
                f'<line class="threshold-{name}" x1="{LEFT}" y1="{y(limit):.1f}" '
                f'x2="{WIDTH - RIGHT}" y2="{y(limit):.1f}" stroke="{color}" '
                'stroke-dasharray="5 4"/>'
                f'<text x="{WIDTH - RIGHT}" y="{y(limit) - 3:.1f}" font-size="10" '
                f'text-anchor="end" fill="{color}">{name} {limit:.3g}</text>'
            )
    line = [(x(p.at.timestamp()), y(p.value)) for p in points if p.value is not None]
    if len(line) > 1:
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in line)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#5c6b7a"/>')
    for p in points:
        value = p.value if p.value is not None else low
        color = COLORS.get(p.verdict, "#5c6b7a")
        shown = "no value" if p.value is None else f"{p.value:.4g}"
        parts.append(
            f'<circle class="point" cx="{x(p.at.timestamp()):.1f}" cy="{y(value):.1f}" r="4" '
            f'fill="{color}" data-verdict="{escape(p.verdict)}" data-value="{shown}">'
            f"<title>{p.at:%Y-%m-%d %H:%M} {escape(p.verdict)}: {shown} {escape(unit)}</title>"
            "</circle>"
        )
    if times:
        first, last = min(points, key=lambda p: p.at).at, max(points, key=lambda p: p.at).at
        parts.append(
            f'<text x="{LEFT}" y="{HEIGHT - 8}" font-size="10">{first:%Y-%m-%d}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
            f"{last:%Y-%m-%d}</text>"
        )
    else:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="12" text-anchor="middle" '
            'fill="#6b7480">no runs yet</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
