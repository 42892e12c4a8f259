"""The operating review: control-effectiveness numbers for a period, trends, offenders, advice.

:func:`build` gathers evidence records from the store, computes
:mod:`prodcontrol.engine.effectiveness` for the period and the periods before it, ranks the worst
offenders and derives only the recommendations the numbers support. :func:`render_html` makes
the page in the site's layout (charts from :mod:`prodcontrol.control.reports.charts`,
no JavaScript) for leaders and the
risk team; ``prodcontrol report operating-review`` writes it and ``prodcontrol serve`` shows it.
:func:`post_weekly_digest` puts a short summary in each tier's risk channel through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.config import Config
from prodcontrol.clock import ensure_utc
from prodcontrol.control.ports import EvidencePorts
from prodcontrol.control.reports import charts
from prodcontrol.engine.effectiveness import (
    Effectiveness,
    Evidence,
    Metrics,
    Period,
    compute,
)
from prodcontrol.engine.incidents import IncidentRow, review_rows
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import Notification, NotificationIn

if TYPE_CHECKING:
    from prodcontrol.web.auth import Viewer

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
    incidents: list[IncidentRow] = Field(
        default_factory=list, description="serious incidents (EU AI Act Art. 73) of the period"
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
    chains = {e.gate_id: e for e in store.list_escalations() if e.gate_id}
    incident_gates = [
        (g, chains.get(g.id))
        for g in store.list_gates()
        if g.kind == "incident"
        and (
            tier is None
            or (g.model in config.inventory.models and config.model(g.model).tier == tier)
        )
    ]
    return OperatingReview(
        incidents=review_rows(incident_gates, current.period.start, current.period.end),
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


# --------------------------------------------------------------------------- plots and page


def plots(review: OperatingReview) -> list[str]:
    labels = [r.period.label for r in review.history]

    def counts(pick: Callable[[Metrics], float]) -> list[float | None]:
        return [pick(r.overall) if r.has_evidence else None for r in review.history]

    trend = charts.line_chart(
        "Findings, SLA breaches and missed runs per period (gaps: no evidence)",
        labels,
        {
            "findings": counts(lambda m: m.findings_opened),
            "SLA breaches": counts(lambda m: m.sla_breaches),
            "missed runs": counts(lambda m: m.runs_missed),
        },
    )
    speed = charts.line_chart(
        "Median hours to acknowledge and to decide per period",
        labels,
        {
            "acknowledge": [_h(r.overall.time_to_acknowledge.median_s) for r in review.history],
            "decide": [_h(r.overall.time_to_decide.median_s) for r in review.history],
        },
    )
    tiers = list(review.current.by_tier)
    schedule = charts.bar_chart(
        f"Scheduled control runs in {review.period}, per tier",
        tiers,
        {
            "on schedule": [float(review.current.by_tier[t].runs_on_schedule) for t in tiers],
            "missed": [float(review.current.by_tier[t].runs_missed) for t in tiers],
        },
    )
    decide = charts.bar_chart(
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


def _cards(m: Metrics) -> list[tuple[str, str]]:
    return [
        ("controls run on schedule", f"{m.runs_on_schedule}/{m.runs_expected}"),
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


def _rows(section: dict[str, Metrics]) -> list[tuple[str, list[str]]]:
    return [(name, [_cell(m, key) for _, key in _COLUMNS]) for name, m in section.items()]


def render_html(review: OperatingReview, viewer: Viewer | None = None) -> str:
    """The review page in the site's layout, charts inline; without ``viewer`` (the file the CLI
    writes) the stylesheet is inlined so the page reads with no server."""
    from prodcontrol.web.render import TEMPLATES, render

    current = review.current
    return render(
        "review.html",
        viewer=viewer,
        css=None if viewer else (TEMPLATES / "style.css").read_text(encoding="utf-8"),
        review=review,
        scope=f"tier {review.tier}" if review.tier else "all tiers",
        first_day=current.period.start.date().isoformat(),
        last_day=(current.period.end - timedelta(days=1)).date().isoformat(),
        cards=_cards(current.overall),
        plots=plots(review),
        columns=[label for label, _ in _COLUMNS],
        by_tier=_rows(current.by_tier),
        by_model=_rows(current.by_model),
        by_owner=_rows(current.by_owner),
    )


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


def post_weekly_digest(rt: EvidencePorts, now: datetime | None = None) -> list[Notification]:
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
