"""Every chart prodcontrol draws, as inline SVG from matplotlib.

One module for the web pages, the operating review and the evidence pack, so a chart looks the
same wherever a reader meets it. matplotlib renders on the server with its object API (no
``pyplot`` global state, safe in a threaded web server); text stays text (``svg.fonttype`` none)
so a page stays small, searchable and readable by a test, and the output is deterministic (no
date in the metadata, a fixed hash salt for element ids).

The parts a reader or a test looks for carry ids (matplotlib's ``gid``):
``<chart>-points-<verdict>``, ``<chart>-threshold-warn|fail``, ``<chart>-series-<n>``,
``<chart>-bars-<n>``, ``<chart>-sla-<group>``, ``<chart>-cell-<row>-<column>``; the root
``<svg>`` carries ``class``, ``aria-label`` and a ``<title>``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

VERDICT_COLORS = {
    "not_applicable": "#8a8f98",
    "pass": "#2e7d32",
    "warn": "#c79100",
    "fail": "#c62828",
    "error": "#6a1b9a",
}
NO_VERDICT = "#e6e9ed"
SERIES_COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"]
INK, MUTED, GRID = "#1f2328", "#57606a", "#eaeef2"
DPI = 96
HEATMAP_LABELLED_CELLS = 600  # above this many cells the verdict names would be unreadable

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "prodcontrol",
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.edgecolor": "#9aa3ad",
    "axes.labelcolor": MUTED,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "axes.titlesize": 10,
    "axes.titlelocation": "left",
}


@dataclass(frozen=True)
class Point:
    """One run's value of one control; ``value`` None when the control gave no number."""

    at: datetime
    value: float | None
    verdict: str


_CACHE: OrderedDict[str, str] = OrderedDict()
_CACHE_SIZE = 512
_CACHE_LOCK = threading.Lock()
_Chart = TypeVar("_Chart", bound=Callable[..., str])


def _cached(draw: _Chart) -> _Chart:
    """Charts of unchanged evidence are drawn once: matplotlib takes a tenth of a second or so
    per chart, a page re-drawn on every request would pay it for each control."""

    @functools.wraps(draw)
    def cached(*args: Any, **kwargs: Any) -> str:
        key = f"{draw.__name__}{args!r}{sorted(kwargs.items())!r}"
        with _CACHE_LOCK:
            if key in _CACHE:
                _CACHE.move_to_end(key)
                return _CACHE[key]
        svg = draw(*args, **kwargs)
        with _CACHE_LOCK:
            _CACHE[key] = svg
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        return svg

    return cast(_Chart, cached)


def slug(text: str) -> str:
    """An id-safe name: ``dataset-drift: Dataset drift`` → ``dataset-drift``."""
    head = text.split(":", 1)[0]
    return re.sub(r"[^a-z0-9]+", "-", head.lower()).strip("-") or "chart"


def _styled() -> contextlib.AbstractContextManager[None]:
    import matplotlib

    return matplotlib.rc_context(_STYLE)  # type: ignore[arg-type]  # keys are checked at runtime


def _figure(width: int, height: int) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)  # grid lines behind bars and points
    return fig, ax


def _svg(fig: Figure, css_class: str, label: str) -> str:
    """``fig`` as an inline ``<svg>`` element (no XML prolog) named for screen readers."""
    buffer = io.StringIO()
    with _styled():
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    opening = (
        f'<svg class="{escape(css_class)}" role="img" aria-label="{escape(label)}" '
        f'data-chart="{escape(slug(label))}" '
    )
    return opening + text[len("<svg ") :].replace(">", f"><title>{escape(label)}</title>", 1)


@_cached
def score_plot(
    title: str,
    points: Sequence[Point],
    warn: float | None,
    fail: float | None,
    unit: str = "",
) -> str:
    """A control's value per run (oldest first), coloured by verdict, with the warn/fail lines."""
    name = slug(title)
    with _styled():
        fig, ax = _figure(460, 200)
        ax.set_title(title, color=INK)
        ax.grid(axis="y", color=GRID)
        valued = [(_day(p.at), p.value) for p in points if p.value is not None]
        if len(valued) > 1:
            ax.plot(
                [at for at, _ in valued],
                [value for _, value in valued],
                color="#8c959f",
                linewidth=1,
                gid=f"{name}-line",
            )
        floor = min([0.0, *(value for _, value in valued)])
        for verdict, color in VERDICT_COLORS.items():
            mine = [p for p in points if p.verdict == verdict]
            if mine:
                ax.scatter(
                    [_day(p.at) for p in mine],
                    [p.value if p.value is not None else floor for p in mine],
                    s=22,
                    color=color,
                    zorder=3,
                    label=f"{verdict} ({len(mine)})",
                    gid=f"{name}-points-{verdict}",
                )
        for kind, limit in (("warn", warn), ("fail", fail)):
            if limit is not None:
                ax.axhline(
                    limit,
                    color=VERDICT_COLORS[kind],
                    linestyle="--",
                    linewidth=1,
                    label=f"{kind} {limit:.3g}",
                    gid=f"{name}-threshold-{kind}",
                )
        if unit:
            ax.set_ylabel(unit)
        if points:
            _date_axis(ax, [_day(p.at) for p in points])
            ax.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
        else:
            ax.set_xticks([])
            ax.text(0.5, 0.5, "no runs yet", transform=ax.transAxes, ha="center", color=MUTED)
        return _svg(fig, "chart score-plot", f"{title} over time")


def _legend_below(ax: Axes, entries: int) -> None:
    """The legend under the axis, where it never hides a bar or a line."""
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        fontsize=8,
        frameon=False,
        ncols=max(1, entries),
    )


def _day(at: datetime) -> float:
    """matplotlib's date number (days since its epoch) for ``at``."""
    from matplotlib.dates import date2num

    return float(date2num(at))  # type: ignore[no-untyped-call]  # untyped in matplotlib 3.11


def _date_axis(ax: Axes, days: Sequence[float]) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    pad = max((max(days) - min(days)) * 0.04, 0.5)
    ax.set_xlim(min(days) - pad, max(days) + pad)
    locator = AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]  # untyped in 3.11
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


@_cached
def line_chart(
    title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]]
) -> str:
    """One line per series over ``labels`` (periods); ``None`` values are gaps."""
    name = slug(title)
    with _styled():
        fig, ax = _figure(560, 250)
        ax.set_title(title, color=INK)
        ax.grid(axis="y", color=GRID)
        positions = list(range(len(labels)))
        for n, (label, values) in enumerate(series.items()):
            ys = [float("nan") if v is None else v for v in values]
            ax.plot(
                positions,
                ys,
                marker="o",
                markersize=4,
                linewidth=2,
                color=SERIES_COLORS[n % len(SERIES_COLORS)],
                label=label,
                gid=f"{name}-series-{n}",
            )
        ax.set_xticks(positions, list(labels))
        ax.set_ylim(bottom=0)
        _legend_below(ax, len(series))
        return _svg(fig, "chart plot", title)


@_cached
def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    limits: Sequence[float | None] = (),
) -> str:
    """Grouped bars per ``groups``; ``limits`` draws a dashed SLA mark over each group."""
    name = slug(title)
    with _styled():
        fig, ax = _figure(560, 250)
        ax.set_title(title, color=INK)
        ax.grid(axis="y", color=GRID)
        width = 0.8 / max(1, len(series))
        for n, (label, values) in enumerate(series.items()):
            ax.bar(
                [g - 0.4 + width * (n + 0.5) for g in range(len(groups))],
                list(values),
                width=width * 0.92,
                color=SERIES_COLORS[n % len(SERIES_COLORS)],
                label=label,
                gid=f"{name}-bars-{n}",
            )
        marks = [(g, limit) for g, limit in enumerate(limits) if limit is not None]
        for g, limit in marks:
            ax.hlines(
                limit,
                g - 0.42,
                g + 0.42,
                colors=INK,
                linestyles="--",
                linewidth=2,
                label="SLA" if g == marks[0][0] else "_nolegend_",
                gid=f"{name}-sla-{g}",
            )
        ax.set_xticks(range(len(groups)), list(groups))
        ax.set_ylim(bottom=0)
        _legend_below(ax, len(series) + 1)
        return _svg(fig, "chart plot", title)


@_cached
def verdict_heatmap(
    title: str,
    rows: Sequence[str],
    columns: Sequence[str],
    cells: Mapping[tuple[str, str], str],
) -> str:
    """``rows`` x ``columns`` coloured by the verdict in ``cells`` (blank: not run or not in
    the model's tier)."""
    from matplotlib.colors import ListedColormap

    name = slug(title)
    order = ["none", *VERDICT_COLORS]
    colors = ListedColormap([NO_VERDICT, *(VERDICT_COLORS[v] for v in order[1:])])
    grid = [[order.index(cells.get((r, c), "none")) for c in columns] for r in rows]
    with _styled():
        width = 260 + 40 * max(1, len(columns))
        height = 190 + 26 * max(1, len(rows))
        fig, ax = _figure(width, height)
        ax.set_title(title, color=INK)
        if rows and columns:
            ax.imshow(grid, cmap=colors, vmin=0, vmax=len(order) - 1, aspect="auto")
        ax.set_xticks(range(len(columns)), list(columns), rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), list(rows))
        ax.tick_params(length=0)
        ax.spines[["left", "bottom"]].set_visible(False)
        if len(rows) * len(columns) <= HEATMAP_LABELLED_CELLS:
            for i, row in enumerate(rows):
                for j, column in enumerate(columns):
                    verdict = cells.get((row, column))
                    ax.text(
                        j,
                        i,
                        "n/a" if verdict == "not_applicable" else verdict or "-",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color=MUTED if verdict is None else "#ffffff",
                        gid=f"{name}-cell-{slug(row)}-{slug(column)}",
                    )
        if not rows:
            ax.text(0.5, 0.5, "no models", transform=ax.transAxes, ha="center", color=MUTED)
        return _svg(fig, "chart heatmap", title)
