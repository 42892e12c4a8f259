"""The operating review: control-effectiveness numbers for a period, trends, offenders, advice.

:func:`build` gathers evidence records from the store, computes
:mod:`prodcontrol.engine.effectiveness` for the period and the periods before it, ranks the worst
offenders and derives only the recommendations the numbers support. :func:`render_html` makes
one self-contained page (inline CSS, server-side SVG plots, no JavaScript) for leaders and the
risk team; ``prodcontrol report operating-review`` writes it and ``prodcontrol serve`` shows it.
:func:`post_weekly_digest` puts a short summary in each tier's risk channel through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.config import Config
from prodcontrol.clock import ensure_utc
from prodcontrol.engine.effectiveness import (
    Effectiveness,
    Evidence,
    Metrics,
    Period,
    compute,
)
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import Notification, NotificationIn

if TYPE_CHECKING:
    from prodcontrol.runtime import Runtime

HISTORY = 5
"""How many periods before the reviewed one the trend plots show."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Recommendation(_Frozen):
    """Advice backed by a number on the page: what was seen, and what to change."""

    subject: str
    finding: str
    action: str


class Offender(_Frozen):
    name: str
    kind: str
    score: int
    why: str


class OperatingReview(_Frozen):
    period: str
    tier: str | None
    current: Effectiveness
    history: list[Effectiveness] = Field(description="oldest first, ending with the current")
    offenders: list[Offender]
    recommendations: list[Recommendation]
    sla: dict[str, dict[str, float]] = Field(
        description="per tier: acknowledge_within_s and decide_within_s"
    )


# --------------------------------------------------------------------------- gathering


def gather(store: EvidenceStore, start: datetime, end: datetime) -> Evidence:
    """Records that may count in ``[start, end)``; gates, waivers and escalations are few."""
    first = store.events(limit=1)
    runs = store.list_runs(since=start, until=end)
    starts = [e.at for e in first] + [r.started_at for r in runs[:1]]
    return Evidence(
        since=min(starts) if starts else None,
        runs=runs,
        findings=[f for f in store.list_findings() if start <= f.opened_at < end],
        gates=store.list_gates(),
        waivers=store.list_waivers(),
        actions=[a for a in store.list_actions() if start <= a.created_at < end],
        escalations=[e for e in store.list_escalations() if start <= e.started_at < end],
    )


def build(
    store: EvidenceStore,
    config: Config,
    period_label: str,
    now: datetime,
    *,
    tier: str | None = None,
    history: int = HISTORY,
) -> OperatingReview:
    """Compute the review of ``period_label`` (``YYYY-MM``) and the ``history`` months before."""
    if tier is not None and tier not in config.catalog.tiers:
        from prodcontrol.errors import UsageError

        known = ", ".join(sorted(config.catalog.tiers))
        raise UsageError(f"unknown tier '{tier}'; tiers in the catalog: {known}")
    periods = [Period.month(period_label)]
    for _ in range(history):
        periods.insert(0, periods[0].previous())
    evidence = gather(store, periods[0].start, periods[-1].end)
    results = [compute(evidence, config, p, now, tier=tier) for p in periods]
    current = results[-1]
    sla = {
        tier_id: {
            "acknowledge_within_s": policy.escalation.acknowledge_within.total_seconds(),
            "decide_within_s": policy.escalation.decide_within.total_seconds(),
        }
        for tier_id, policy in config.catalog.tiers.items()
        if tier is None or tier_id == tier
    }
    return OperatingReview(
        period=current.period.label,
        tier=tier,
        current=current,
        history=results,
        offenders=offenders(current),
        recommendations=recommendations(current, results, config),
        sla=sla,
    )


# --------------------------------------------------------------------------- analysis


def offenders(result: Effectiveness, limit: int = 5) -> list[Offender]:
    """Models and owners with the most SLA breaches, missed runs and findings, worst first."""
    found: list[Offender] = []
    for kind, section in (("model", result.by_model), ("owner", result.by_owner)):
        for name, m in section.items():
            score = 3 * m.sla_breaches + 2 * m.runs_missed + m.findings_opened
            score += 5 * (m.rollbacks + m.suspensions)
            if score:
                why = (
                    f"{m.sla_breaches} SLA breach(es), {m.runs_missed} missed run(s), "
                    f"{m.findings_opened} finding(s), {m.rollbacks} rollback(s), "
                    f"{m.suspensions} suspension(s)"
                )
                found.append(Offender(name=name, kind=kind, score=score, why=why))
    found.sort(key=lambda o: (-o.score, o.kind, o.name))
    return found[:limit]


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def recommendations(
    result: Effectiveness, history: Sequence[Effectiveness], config: Config
) -> list[Recommendation]:
    """Only advice a number on the page supports; an empty list means nothing stood out."""
    advice: list[Recommendation] = []
    weeks = max(1.0, (result.period.end - result.period.start).days / 7)
    for stats in result.by_control:
        waived_share = stats.waivers / stats.findings if stats.findings else 0.0
        if stats.findings >= weeks and waived_share >= 0.75:
            advice.append(
                Recommendation(
                    subject=f"control {stats.control_id}",
                    finding=(
                        f"fired {stats.findings} times in {result.period.label} (about weekly or "
                        f"more) and was waived {stats.waivers} times ({waived_share:.0%})"
                    ),
                    action="revisit its threshold or parameters: a finding that is always "
                    "waived trains people to ignore the control",
                )
            )
    for tier_id, m in result.by_tier.items():
        policy = config.catalog.tiers[tier_id]
        decide = policy.escalation.decide_within.total_seconds()
        ack = policy.escalation.acknowledge_within.total_seconds()
        median_decide = m.time_to_decide.median_s
        if median_decide is not None and median_decide > decide:
            advice.append(
                Recommendation(
                    subject=f"tier {tier_id}",
                    finding=f"median time to decide {_hours(median_decide)} exceeds the "
                    f"{_hours(decide)} SLA",
                    action="add an escalation step or name a delegate who holds the right",
                )
            )
        median_ack = m.time_to_acknowledge.median_s
        if median_ack is not None and median_ack > ack:
            advice.append(
                Recommendation(
                    subject=f"tier {tier_id}",
                    finding=f"median time to acknowledge {_hours(median_ack)} exceeds the "
                    f"{_hours(ack)} SLA",
                    action="check that the first escalation step reaches someone on duty; "
                    "shorten its delay or add a channel step",
                )
            )
        if m.runs_missed:
            advice.append(
                Recommendation(
                    subject=f"tier {tier_id}",
                    finding=f"{m.runs_missed} of {m.runs_expected} scheduled control runs "
                    "did not happen",
                    action="check the tier's deployment, work pool and workers; a silent "
                    "monitor is a failed monitor",
                )
            )
        if m.escalations_started and m.escalations_last_step * 2 > m.escalations_started:
            advice.append(
                Recommendation(
                    subject=f"tier {tier_id}",
                    finding=f"{m.escalations_last_step} of {m.escalations_started} escalations "
                    "reached the last step",
                    action="the first recipients do not act: confirm the owners, or move the "
                    "person who does act earlier in the chain",
                )
            )
    if result.overall.waivers_renewed:
        advice.append(
            Recommendation(
                subject="waivers",
                finding=f"{result.overall.waivers_renewed} waiver(s) renewed for a finding "
                "already waived before",
                action="fix the cause or change the control; renewing a waiver keeps the risk open",
            )
        )
    if result.overall.models_overdue_for_review:
        names = ", ".join(result.overall.models_overdue_for_review)
        advice.append(
            Recommendation(
                subject="model review",
                finding=f"overdue for review: {names}",
                action="schedule the reviews; the review gate's checklist is in the catalog",
            )
        )
    if result.overall.production_models_missing_owner:
        names = ", ".join(result.overall.production_models_missing_owner)
        advice.append(
            Recommendation(
                subject="ownership",
                finding=f"in production with a missing owner: {names}",
                action="name every owner or move the model back to pilot",
            )
        )
    if len(history) >= 2:
        before, now_ = history[-2].overall, result.overall
        if before.sla_breaches and now_.sla_breaches > 1.5 * before.sla_breaches:
            advice.append(
                Recommendation(
                    subject="trend",
                    finding=f"SLA breaches rose from {before.sla_breaches} to "
                    f"{now_.sla_breaches} against {history[-2].period.label}",
                    action="look at the worst offenders below first",
                )
            )
    return advice


# --------------------------------------------------------------------------- JSON


def to_json(review: OperatingReview) -> dict[str, Any]:
    data: dict[str, Any] = review.model_dump(mode="json")
    return data


# --------------------------------------------------------------------------- SVG plots

_COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"]
_W, _H, _PAD_L, _PAD_B, _PAD_T, _PAD_R = 560, 240, 48, 36, 28, 36


def _axis(maximum: float, title: str) -> list[str]:
    parts = [f'<text x="{_W / 2}" y="16" text-anchor="middle" class="t">{escape(title)}</text>']
    for i in range(5):
        value = maximum * i / 4
        y = _H - _PAD_B - (_H - _PAD_B - _PAD_T) * i / 4
        parts.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{y:.1f}" y2="{y:.1f}" class="g"/>'
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}</text>'
        )
    return parts


def _legend(names: Sequence[str]) -> list[str]:
    parts = []
    for i, name in enumerate(names):
        x = _PAD_L + i * 130
        color = _COLORS[i % len(_COLORS)]
        parts.append(
            f'<rect x="{x}" y="{_H - 12}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="{_H - 3}">{escape(name)}</text>'
        )
    return parts


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> str:
    """A trend plot over periods; ``None`` points are gaps."""
    values = [v for s in series.values() for v in s if v is not None]
    maximum = max(values, default=0.0) or 1.0
    width = _W - _PAD_L - _PAD_R
    step = width / max(1, len(labels) - 1)
    height = _H - _PAD_B - _PAD_T
    parts = _axis(maximum, title)
    for i, label in enumerate(labels):
        x = _PAD_L + i * step
        parts.append(
            f'<text x="{x:.1f}" y="{_H - _PAD_B + 14}" text-anchor="middle">{escape(label)}</text>'
        )
    for n, (name, points) in enumerate(series.items()):
        color = _COLORS[n % len(_COLORS)]
        coords = [
            (_PAD_L + i * step, _H - _PAD_B - height * v / maximum)
            for i, v in enumerate(points)
            if v is not None
        ]
        if coords:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2">'
                f"<title>{escape(name)}</title></polyline>"
            )
            parts += [
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords
            ]
    parts += _legend(list(series))
    return _svg(title, parts)


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: dict[str, Sequence[float]],
    limits: Sequence[float | None] = (),
) -> str:
    """Grouped bars; ``limits`` draws a dashed SLA mark over each group."""
    values = [v for s in series.values() for v in s] + [v for v in limits if v is not None]
    maximum = max(values, default=0.0) or 1.0
    height = _H - _PAD_B - _PAD_T
    slot = (_W - _PAD_L - _PAD_R) / max(1, len(groups))
    bar = slot * 0.8 / max(1, len(series))
    parts = _axis(maximum, title)
    for g, group in enumerate(groups):
        x0 = _PAD_L + g * slot + slot * 0.1
        parts.append(
            f'<text x="{x0 + slot * 0.4:.1f}" y="{_H - _PAD_B + 14}" '
            f'text-anchor="middle">{escape(group)}</text>'
        )
        for n, (name, column) in enumerate(series.items()):
            value = column[g]
            h = height * value / maximum
            parts.append(
                f'<rect class="bar" x="{x0 + n * bar:.1f}" y="{_H - _PAD_B - h:.1f}" '
                f'width="{bar - 2:.1f}" height="{max(h, 0.5):.1f}" '
                f'fill="{_COLORS[n % len(_COLORS)]}"><title>{escape(name)} {escape(group)}: '
                f"{value:.3g}</title></rect>"
            )
        limit = limits[g] if g < len(limits) else None
        if limit is not None:
            y = _H - _PAD_B - height * limit / maximum
            parts.append(
                f'<line x1="{x0:.1f}" x2="{x0 + slot * 0.8:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                f'class="sla"><title>SLA {limit:.3g}</title></line>'
            )
    parts += _legend(list(series))
    return _svg(title, parts)


def _svg(title: str, parts: list[str]) -> str:
    body = "".join(parts)
    return (
        f'<svg class="plot" role="img" aria-label="{escape(title)}" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg">{body}</svg>'
    )


def plots(review: OperatingReview) -> list[str]:
    labels = [r.period.label for r in review.history]

    def counts(pick: Callable[[Metrics], float]) -> list[float | None]:
        return [pick(r.overall) if r.has_evidence else None for r in review.history]

    trend = line_chart(
        "Findings, SLA breaches and missed runs per period (gaps: no evidence)",
        labels,
        {
            "findings": counts(lambda m: m.findings_opened),
            "SLA breaches": counts(lambda m: m.sla_breaches),
            "missed runs": counts(lambda m: m.runs_missed),
        },
    )
    speed = line_chart(
        "Median hours to acknowledge and to decide per period",
        labels,
        {
            "acknowledge": [_h(r.overall.time_to_acknowledge.median_s) for r in review.history],
            "decide": [_h(r.overall.time_to_decide.median_s) for r in review.history],
        },
    )
    tiers = list(review.current.by_tier)
    schedule = bar_chart(
        f"Scheduled control runs in {review.period}, per tier",
        tiers,
        {
            "on schedule": [float(review.current.by_tier[t].runs_on_schedule) for t in tiers],
            "missed": [float(review.current.by_tier[t].runs_missed) for t in tiers],
        },
    )
    decide = bar_chart(
        f"Hours to decide in {review.period}, per tier (dashed: SLA)",
        tiers,
        {
            "median": [_h(review.current.by_tier[t].time_to_decide.median_s) or 0.0 for t in tiers],
            "p90": [_h(review.current.by_tier[t].time_to_decide.p90_s) or 0.0 for t in tiers],
        },
        limits=[_h(review.sla.get(t, {}).get("decide_within_s")) for t in tiers],
    )
    return [trend, speed, schedule, decide]


def _h(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#1f2328}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.sub{color:#57606a} .cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:140px}
.card b{display:block;font-size:20px} table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:right}
td{white-space:nowrap}
th:first-child,td:first-child{text-align:left} .plots{display:flex;flex-wrap:wrap;gap:16px}
svg.plot{border:1px solid #d0d7de;border-radius:6px;background:#fff}
svg text{font-size:11px;fill:#57606a} svg text.t{font-size:13px;fill:#1f2328}
svg .g{stroke:#eaeef2} svg .sla{stroke:#1f2328;stroke-dasharray:4 3;stroke-width:2}
li{margin:4px 0}
"""

_COLUMNS: list[tuple[str, str]] = [
    ("runs on schedule", "runs_on_schedule"),
    ("missed", "runs_missed"),
    ("findings", "findings_opened"),
    ("ack median", "ack_median"),
    ("ack p90", "ack_p90"),
    ("decide median", "decide_median"),
    ("decide p90", "decide_p90"),
    ("at last step", "escalations_last_step"),
    ("SLA breaches", "sla_breaches"),
    ("waivers granted", "waivers_granted"),
    ("expired", "waivers_expired"),
    ("renewed", "waivers_renewed"),
    ("rollbacks", "rollbacks"),
    ("suspensions", "suspensions"),
]


def _cell(m: Metrics, key: str) -> str:
    special = {
        "ack_median": m.time_to_acknowledge.median_s,
        "ack_p90": m.time_to_acknowledge.p90_s,
        "decide_median": m.time_to_decide.median_s,
        "decide_p90": m.time_to_decide.p90_s,
    }
    if key in special:
        return _hours(special[key])
    return str(getattr(m, key))


def _table(title: str, section: dict[str, Metrics]) -> str:
    head = "".join(f"<th>{escape(label)}</th>" for label, _ in _COLUMNS)
    rows = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{escape(_cell(m, key))}</td>" for _, key in _COLUMNS)
        + "</tr>"
        for name, m in section.items()
    )
    empty = f'<tr><td colspan="{len(_COLUMNS) + 1}">no data</td></tr>'
    return f"<h2>{escape(title)}</h2><table><tr><th></th>{head}</tr>{rows or empty}</table>"


def _cards(m: Metrics) -> str:
    on_time = f"{m.runs_on_schedule}/{m.runs_expected}"
    cards = [
        ("controls run on schedule", on_time),
        ("findings opened", str(m.findings_opened)),
        ("median time to acknowledge", _hours(m.time_to_acknowledge.median_s)),
        ("median time to decide", _hours(m.time_to_decide.median_s)),
        ("SLA breaches", str(m.sla_breaches)),
        ("escalations at last step", f"{m.escalations_last_step}/{m.escalations_started}"),
        (
            "waivers granted / expired / renewed",
            f"{m.waivers_granted} / {m.waivers_expired} / {m.waivers_renewed}",
        ),
        ("rollbacks / suspensions", f"{m.rollbacks} / {m.suspensions}"),
        ("overdue for review", str(len(m.models_overdue_for_review))),
        ("production, owner missing", str(len(m.production_models_missing_owner))),
    ]
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{escape(v)}</b>{escape(k)}</div>' for k, v in cards)
        + "</div>"
    )


def render_html(review: OperatingReview) -> str:
    """The whole page as one HTML string, plots embedded as inline SVG."""
    current = review.current
    scope = f"tier {review.tier}" if review.tier else "all tiers"
    recs = (
        "".join(
            f"<li><b>{escape(r.subject)}</b>: {escape(r.finding)}. <i>{escape(r.action)}.</i></li>"
            for r in review.recommendations
        )
        or "<li>Nothing in this period's numbers calls for a change.</li>"
    )
    worst = (
        "".join(
            f"<tr><td>{escape(o.name)}</td><td>{escape(o.kind)}</td><td>{o.score}</td>"
            f"<td style='text-align:left'>{escape(o.why)}</td></tr>"
            for o in review.offenders
        )
        or '<tr><td colspan="4">none</td></tr>'
    )
    controls = (
        "".join(
            f"<tr><td>{escape(c.control_id)}</td><td>{c.findings}</td><td>{c.waivers}</td>"
            f"<td style='text-align:left'>{escape(', '.join(c.models))}</td></tr>"
            for c in current.by_control
        )
        or '<tr><td colspan="4">no findings</td></tr>'
    )
    overdue = ", ".join(current.overall.models_overdue_for_review) or "none"
    computed = ensure_utc(current.computed_at).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Operating review {escape(review.period)}</title><style>{_CSS}</style></head>
<body>
<h1>Operating review {escape(review.period)}</h1>
<div class="sub">{escape(scope)} · {escape(current.period.start.date().isoformat())} to
{escape((current.period.end - timedelta(days=1)).date().isoformat())} · computed {computed}
from the evidence store</div>
<h2>This period</h2>{_cards(current.overall)}
<h2>Recommendations</h2><ul id="recommendations">{recs}</ul>
<h2>Trends against previous periods</h2><div class="plots">{"".join(plots(review))}</div>
<h2>Worst offenders</h2>
<table><tr><th>name</th><th>kind</th><th>score</th><th style="text-align:left">why</th></tr>
{worst}</table>
<h2>Controls that fired</h2>
<table><tr><th>control</th><th>findings</th><th>waivers</th>
<th style="text-align:left">models</th></tr>{controls}</table>
{_table("Per tier", current.by_tier)}
{_table("Per model", current.by_model)}
{_table("Per owner (model behaviour)", current.by_owner)}
<h2>Model review</h2><p>Overdue for review at the end of the period: {escape(overdue)}.</p>
</body></html>
"""


# --------------------------------------------------------------------------- weekly digest


def digest_text(result: Effectiveness, tier: str) -> str:
    m = result.by_tier.get(tier, Metrics())
    return (
        f"Weekly control digest, {tier} tier, {result.period.label}: "
        f"{m.runs_on_schedule}/{m.runs_expected} scheduled runs on time, "
        f"{m.findings_opened} finding(s), {m.sla_breaches} SLA breach(es), "
        f"median decide {_hours(m.time_to_decide.median_s)}, "
        f"{m.waivers_granted} waiver(s) granted, {m.rollbacks} rollback(s), "
        f"{m.suspensions} suspension(s), "
        f"{len(m.models_overdue_for_review)} model(s) overdue for review."
    )


def post_weekly_digest(rt: Runtime, now: datetime | None = None) -> list[Notification]:
    """Enqueue, once per ISO week, a digest of the last 7 days to each tier's risk channel."""
    now = ensure_utc(now or rt.clock.now())
    year, week, _ = now.isocalendar()
    period = Period(label=f"{year}-W{week:02d}", start=now - timedelta(days=7), end=now)
    evidence = gather(rt.store, period.start, period.end)
    result = compute(evidence, rt.config, period, now)
    messages = []
    for tier_id, policy in sorted(rt.config.catalog.tiers.items()):
        text = digest_text(result, tier_id)
        messages.append(
            NotificationIn(
                idempotency_key=f"digest:{tier_id}:{period.label}",
                recipient_kind="channel",
                recipient=policy.risk_channel,
                payload={
                    "kind": "weekly_digest",
                    "text": text,
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
                },
            )
        )
    return rt.store.enqueue(messages)
