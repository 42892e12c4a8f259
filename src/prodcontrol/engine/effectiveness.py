"""How well the controls themselves work, computed from evidence records over a period.

Pure: records and the configuration in, numbers out, no store and no clock (``now`` is passed).
Every metric is computed per tier, per model, per owner (the model's ``model_behaviour`` owner,
the first person every tier's escalation reaches) and for the whole fleet. The definitions,
so that a reader of the operating review can check any number against the evidence:

- **runs on schedule / missed**: the tier's cron gives the expected slots for each controlled
  model in ``[max(start, evidence start), min(end, now))``, where the evidence start is the
  first entry of the store (nothing before it can be measured); a slot is on schedule when a
  finished run of that model started before the next slot, missed otherwise. Extra runs in
  the same slot do not count twice.
- **findings opened**: findings whose ``opened_at`` is in the period.
- **time to acknowledge**: ``acknowledged_at - started_at`` of escalations started in the period.
- **time to decide**: ``decided_at - opened_at`` of finding gates opened in the period and
  approved or rejected by people (expired gates are breaches, not decisions).
- **SLA breaches**: an escalation answered (acknowledged, or resolved by a decision) later than
  the tier's ``acknowledge_within`` or still unanswered past it; a finding gate decided later
  than ``decide_within``, expired, or still pending past it.
- **escalations at the last step**: status ``exhausted``, or every step of the tier's chain
  notified (an escalation's ``step`` counts the positions already notified, see
  :mod:`prodcontrol.engine.escalation`).
- **waivers**: granted in the period; expired in the period (not revoked first); renewed = granted
  for a model and control that already had an earlier waiver.
- **rollbacks / suspensions**: applied actions of that kind created in the period.
- **overdue for review**: controlled models whose last review (``last_review`` in models.yaml, or
  a later approved ``review`` gate) is older than the tier's ``review_every`` at the period end.
- **production models with a missing owner**: at the time of computing.

Percentiles use the nearest-rank method: p90 of n values is the ``ceil(0.9 n)``-th smallest.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from cronsim import CronSim
from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.catalog.types import CONTROLLED_STAGES
from prodcontrol.clock import ensure_utc
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import (
    Action,
    ControlRun,
    Escalation,
    Finding,
    Gate,
    Waiver,
)

NO_OWNER = "(no owner)"
_PERIOD = re.compile(r"^(\d{4})-(\d{2})$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Period(_Frozen):
    """A calendar month in UTC, ``[start, end)``."""

    label: str
    start: datetime
    end: datetime

    @classmethod
    def month(cls, label: str) -> Period:
        match = _PERIOD.match(label.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise UsageError(f"period '{label}' is not a month; write it as YYYY-MM, e.g. 2026-10")
        year, month = int(match.group(1)), int(match.group(2))
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return cls(label=f"{year:04d}-{month:02d}", start=start, end=end)

    def previous(self) -> Period:
        before = self.start - timedelta(days=1)
        return Period.month(f"{before.year:04d}-{before.month:02d}")

    def contains(self, when: datetime | None) -> bool:
        return when is not None and self.start <= ensure_utc(when) < self.end


class Evidence(_Frozen):
    """The records the metrics read; :mod:`prodcontrol.control.reports.review_report` gathers them
    from a store."""

    runs: list[ControlRun] = Field(default_factory=list)
    findings: list[Finding] = Field(default_factory=list)
    gates: list[Gate] = Field(default_factory=list)
    waivers: list[Waiver] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    since: datetime | None = Field(
        None, description="when the store's evidence begins; None: no evidence at all"
    )


class Durations(_Frozen):
    """Median and p90 of a set of durations, in seconds; ``None`` when there are none."""

    count: int
    median_s: float | None
    p90_s: float | None


class Metrics(_Frozen):
    runs_expected: int = 0
    runs_on_schedule: int = 0
    runs_missed: int = 0
    findings_opened: int = 0
    time_to_acknowledge: Durations = Durations(count=0, median_s=None, p90_s=None)
    time_to_decide: Durations = Durations(count=0, median_s=None, p90_s=None)
    escalations_started: int = 0
    escalations_last_step: int = 0
    ack_sla_breaches: int = 0
    decide_sla_breaches: int = 0
    sla_breaches: int = 0
    waivers_granted: int = 0
    waivers_expired: int = 0
    waivers_renewed: int = 0
    rollbacks: int = 0
    suspensions: int = 0
    models_overdue_for_review: list[str] = Field(default_factory=list)
    production_models_missing_owner: list[str] = Field(default_factory=list)


class ControlStats(_Frozen):
    """How often one control fired in the period, and how often it was waived."""

    control_id: str
    findings: int
    waivers: int
    models: list[str]


class Effectiveness(_Frozen):
    period: Period
    computed_at: datetime
    tier: str | None = None
    has_evidence: bool = Field(description="whether the store holds evidence from this period")
    overall: Metrics
    by_tier: dict[str, Metrics]
    by_model: dict[str, Metrics]
    by_owner: dict[str, Metrics]
    by_control: list[ControlStats]


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the ``ceil(share * n)``-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def durations(values: Sequence[float]) -> Durations:
    return Durations(
        count=len(values),
        median_s=statistics.median(values) if values else None,
        p90_s=percentile(values, 0.9),
    )


def expected_slots(cron: str, start: datetime, end: datetime) -> list[datetime]:
    """Cron fire times in ``[start, end)`` (UTC)."""
    slots: list[datetime] = []
    if end <= start:
        return slots
    # CronSim yields times strictly after its start; begin a second earlier to include ``start``
    for slot in CronSim(cron, start - timedelta(seconds=1)):
        if slot >= end:
            break
        slots.append(slot)
    return slots


@dataclass
class _Acc:
    expected: int = 0
    on_schedule: int = 0
    findings: int = 0
    ack: list[float] = field(default_factory=list)
    decide: list[float] = field(default_factory=list)
    escalations: int = 0
    last_step: int = 0
    ack_breaches: int = 0
    decide_breaches: int = 0
    granted: int = 0
    expired: int = 0
    renewed: int = 0
    rollbacks: int = 0
    suspensions: int = 0
    overdue: set[str] = field(default_factory=set)
    missing_owner: set[str] = field(default_factory=set)

    def finish(self) -> Metrics:
        return Metrics(
            runs_expected=self.expected,
            runs_on_schedule=self.on_schedule,
            runs_missed=self.expected - self.on_schedule,
            findings_opened=self.findings,
            time_to_acknowledge=durations(self.ack),
            time_to_decide=durations(self.decide),
            escalations_started=self.escalations,
            escalations_last_step=self.last_step,
            ack_sla_breaches=self.ack_breaches,
            decide_sla_breaches=self.decide_breaches,
            sla_breaches=self.ack_breaches + self.decide_breaches,
            waivers_granted=self.granted,
            waivers_expired=self.expired,
            waivers_renewed=self.renewed,
            rollbacks=self.rollbacks,
            suspensions=self.suspensions,
            models_overdue_for_review=sorted(self.overdue),
            production_models_missing_owner=sorted(self.missing_owner),
        )


class _Groups:
    """Accumulators for the fleet, each tier, each model and each owner."""

    def __init__(self, config: Config, tier: str | None) -> None:
        self.config = config
        self.tier = tier
        self.acc: dict[tuple[str, str], _Acc] = defaultdict(_Acc)

    def tier_of(self, model: str, recorded: str | None = None) -> str:
        entry = self.config.inventory.models.get(model)
        return entry.tier if entry is not None else (recorded or "(unknown)")

    def owner_of(self, model: str) -> str:
        entry = self.config.inventory.models.get(model)
        owner = entry.owners.model_behaviour if entry is not None else None
        return owner or NO_OWNER

    def for_model(self, model: str, tier: str | None = None) -> Iterator[_Acc]:
        tier_id = self.tier_of(model, tier)
        if self.tier is not None and tier_id != self.tier:
            return
        for key in (("all", "all"), ("tier", tier_id), ("model", model)):
            yield self.acc[key]
        yield self.acc[("owner", self.owner_of(model))]

    def section(self, kind: str) -> dict[str, Metrics]:
        return {k[1]: a.finish() for k, a in sorted(self.acc.items()) if k[0] == kind}


def compute(
    evidence: Evidence,
    config: Config,
    period: Period,
    now: datetime,
    *,
    tier: str | None = None,
) -> Effectiveness:
    """Every metric of the module docstring, for ``period`` as known at ``now``."""
    now = ensure_utc(now)
    groups = _Groups(config, tier)
    run_tier = {r.id: r.tier for r in evidence.runs}
    since = evidence.since
    _schedule(groups, evidence.runs, config, period, since=since or now, now=now)
    for finding in evidence.findings:
        if period.contains(finding.opened_at):
            for acc in groups.for_model(finding.model, run_tier.get(finding.run_id)):
                acc.findings += 1
    _escalations(groups, evidence.escalations, config, period, now)
    _gates(groups, evidence.gates, config, period, now)
    _waivers(groups, evidence.waivers, period, now)
    _actions(groups, evidence.actions, period)
    _reviews(groups, evidence.gates, config, period)
    for model in config.inventory.models.values():
        if model.stage == "production" and missing_owner_roles(model):
            for acc in groups.for_model(model.name):
                acc.missing_owner.add(model.name)
    overall = groups.section("all").get("all", Metrics())
    return Effectiveness(
        period=period,
        computed_at=now,
        tier=tier,
        has_evidence=since is not None and since < min(period.end, now),
        overall=overall,
        by_tier=groups.section("tier"),
        by_model=groups.section("model"),
        by_owner=groups.section("owner"),
        by_control=_controls(evidence, period, groups),
    )


def _controlled(config: Config) -> list[ModelEntry]:
    return [m for m in config.inventory.models.values() if m.stage in CONTROLLED_STAGES]


def _schedule(
    groups: _Groups,
    runs: Iterable[ControlRun],
    config: Config,
    period: Period,
    *,
    since: datetime,
    now: datetime,
) -> None:
    started: dict[str, list[datetime]] = defaultdict(list)
    for run in runs:
        if run.status != "running":
            started[run.model].append(run.started_at)
    end = min(period.end, now)
    for model in _controlled(config):
        tier = config.tier(model)
        slots = expected_slots(tier.schedule, max(period.start, ensure_utc(since)), end)
        times = sorted(started.get(model.name, []))
        for position, slot in enumerate(slots):
            until = slots[position + 1] if position + 1 < len(slots) else end
            first = bisect_left(times, slot)
            ran = first < len(times) and times[first] < until
            for acc in groups.for_model(model.name):
                acc.expected += 1
                acc.on_schedule += int(ran)


def _escalations(
    groups: _Groups,
    escalations: Iterable[Escalation],
    config: Config,
    period: Period,
    now: datetime,
) -> None:
    for esc in escalations:
        if not period.contains(esc.started_at):
            continue
        policy = config.catalog.tiers.get(esc.tier)
        last = len(policy.escalation.steps) if policy else 1
        answered = esc.acknowledged_at
        if answered is None and esc.status == "resolved":
            answered = esc.closed_at
        waited = ((answered or now) - esc.started_at).total_seconds()
        limit = policy.escalation.acknowledge_within.total_seconds() if policy else math.inf
        breach = waited > limit
        for acc in groups.for_model(esc.model, esc.tier):
            acc.escalations += 1
            acc.last_step += int(esc.status == "exhausted" or esc.step >= last)
            acc.ack_breaches += int(breach)
            if esc.acknowledged_at is not None:
                acc.ack.append((esc.acknowledged_at - esc.started_at).total_seconds())


def _gates(
    groups: _Groups, gates: Iterable[Gate], config: Config, period: Period, now: datetime
) -> None:
    for gate in gates:
        if gate.kind != "finding" or not period.contains(gate.opened_at):
            continue
        entry = config.inventory.models.get(gate.model)
        policy = config.tier(entry) if entry is not None else None
        limit = policy.escalation.decide_within.total_seconds() if policy else math.inf
        decided = gate.status in {"approved", "rejected"} and gate.decided_at is not None
        took = ((gate.decided_at or now) - gate.opened_at).total_seconds()
        breach = gate.status == "expired" or took > limit
        for acc in groups.for_model(gate.model):
            acc.decide_breaches += int(breach)
            if decided:
                acc.decide.append(took)


def _waivers(groups: _Groups, waivers: Sequence[Waiver], period: Period, now: datetime) -> None:
    first: dict[tuple[str, str], datetime] = {}
    for waiver in sorted(waivers, key=lambda w: w.granted_at):
        first.setdefault((waiver.model, waiver.control_id), waiver.granted_at)
    horizon = min(period.end, now)
    for waiver in waivers:
        renewed = first[(waiver.model, waiver.control_id)] < waiver.granted_at
        expired = period.start <= waiver.expires_at < horizon and (
            waiver.revoked_at is None or waiver.revoked_at > waiver.expires_at
        )
        granted = period.contains(waiver.granted_at)
        for acc in groups.for_model(waiver.model):
            acc.granted += int(granted)
            acc.renewed += int(granted and renewed)
            acc.expired += int(expired)


def _actions(groups: _Groups, actions: Iterable[Action], period: Period) -> None:
    for action in actions:
        if action.status != "applied" or not period.contains(action.created_at):
            continue
        for acc in groups.for_model(action.model):
            acc.rollbacks += int(action.action == "rollback")
            acc.suspensions += int(action.action == "suspend")


def last_reviewed(model: ModelEntry, gates: Iterable[Gate]) -> datetime | None:
    """The later of ``last_review`` in models.yaml and the newest approved review gate."""
    known = [
        g.decided_at
        for g in gates
        if g.kind == "review" and g.model == model.name and g.status == "approved" and g.decided_at
    ]
    if model.last_review is not None:
        known.append(_midnight(model.last_review))
    return max(known) if known else None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _reviews(groups: _Groups, gates: Sequence[Gate], config: Config, period: Period) -> None:
    for model in _controlled(config):
        before_end = [g for g in gates if g.decided_at and g.decided_at < period.end]
        reviewed = last_reviewed(model, before_end)
        every = config.tier(model).review_every
        if reviewed is None or reviewed + every < period.end:
            for acc in groups.for_model(model.name):
                acc.overdue.add(model.name)


def _controls(evidence: Evidence, period: Period, groups: _Groups) -> list[ControlStats]:
    fired: dict[str, list[str]] = defaultdict(list)
    waived: dict[str, int] = defaultdict(int)
    run_tier = {r.id: r.tier for r in evidence.runs}
    for finding in evidence.findings:
        tier = run_tier.get(finding.run_id)
        if period.contains(finding.opened_at) and _in_scope(groups, finding.model, tier):
            fired[finding.control_id].append(finding.model)
    for waiver in evidence.waivers:
        if period.contains(waiver.granted_at) and _in_scope(groups, waiver.model):
            waived[waiver.control_id] += 1
    return [
        ControlStats(
            control_id=control_id,
            findings=len(models),
            waivers=waived.get(control_id, 0),
            models=sorted(set(models)),
        )
        for control_id, models in sorted(fired.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]


def _in_scope(groups: _Groups, model: str, tier: str | None = None) -> bool:
    return groups.tier is None or groups.tier_of(model, tier) == groups.tier
