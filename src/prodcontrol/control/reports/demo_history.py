"""``prodcontrol demo --history DAYS``: the real loop over past days, on a simulated clock.

Each past day at 06:00 UTC every controlled model's tier controls run through the same
close-run use case as ``prodcontrol check`` (verdicts, findings, the run's gate, the first
escalation step, outbox rows), the escalation ticker runs through the day, owners acknowledge
and right holders decide the day's gates after delays that differ from day to day, and gates
nobody decides time out as the tier says. The current data drifts in gradually (a growing share
of each model's current rows mixed into its reference rows), so the score plots and the
operating review show a trend instead of one point. Evidence, MLflow write-backs and the outbox
are the real ones; only the clock is simulated, and the Evidently HTML reports of the past
days are not rendered (seconds each; the verdicts never depend on them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prodcontrol.catalog.schema import DataSource
from prodcontrol.errors import DecisionRefused, ProdControlError
from prodcontrol.ports import Dataset, DatasetSource
from prodcontrol.runtime import Runtime

DECISION_WINDOW = timedelta(hours=8)
"""Decisions land this far into a gate's timeout at most (the high tier's whole timeout)."""


class SimulatedClock:
    """A clock the history moves forward, one event at a time."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = max(self._now, when)


class DriftingDatasets:
    """The real dataset source; a model's current data is blended in as the days go by.

    On the first simulated day the current data is the reference data; by ``end`` it is the
    model's own current data, so drift and data-quality scores rise day after day.
    """

    def __init__(
        self,
        inner: DatasetSource,
        references: dict[str, DataSource],
        start: datetime,
        end: datetime,
    ) -> None:
        self.inner, self.references, self.start, self.end = inner, references, start, end

    def share(self, now: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return min(1.0, max(0.0, (now - self.start).total_seconds() / span))

    def load(
        self, spec: DataSource, *, now: datetime, columns: list[str] | None = None
    ) -> Dataset:
        loaded = self.inner.load(spec, now=now, columns=columns)
        reference = self.references.get(_key(spec))
        share = self.share(now)
        if reference is None or share >= 1.0:
            return loaded
        import pandas as pd

        base = self.inner.load(reference, now=now, columns=columns).frame
        current = loaded.frame
        rows = min(len(base), len(current))
        taken = round(rows * share)
        frame = pd.concat([current.iloc[:taken], base.iloc[taken:rows]], ignore_index=True)[
            list(current.columns)
        ]
        return loaded.model_copy(update={"frame": frame, "rows": len(frame)})


def _key(spec: DataSource) -> str:
    return spec.model_dump_json()


@dataclass
class HistoryReport:
    days: int
    runs: int = 0
    findings: int = 0
    decisions: int = 0
    acknowledged: int = 0
    expired: int = 0


def simulate(
    rt: Runtime,
    days: int,
    *,
    clock: SimulatedClock,
    end: datetime,
    progress: Callable[[str], None] | None = None,
) -> HistoryReport:
    """Run ``days`` past days of the loop on ``rt`` (whose clock is ``clock``) before ``end``.

    The last simulated day closes at least two hours before ``end``, so the evidence never runs
    ahead of the real clock the rest of the demo uses.
    """
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.runs.checks import run_checks

    say = progress or (lambda _message: None)
    report = HistoryReport(days=days)
    last = last_morning(end)
    models = [m.name for m in rt.config.controlled_models(None)]
    for day in range(days):
        morning = last - timedelta(days=days - 1 - day)
        clock.set(morning)
        for model in models:
            result = run_checks(rt, model, trigger="schedule")
            report.runs += 1
            report.findings += len(result.findings)
        for hours in _tick_hours(day):
            clock.set(morning + timedelta(hours=hours))
            escalation.tick(rt)
            _deliver(rt)
            report.acknowledged += _acknowledge(rt, escalation, day)
        report.decisions += _decide_pending(rt, clock, day)
        clock.set(morning + timedelta(hours=23))
        escalation.tick(rt)
        report.expired += len(_expire(rt))
        say(f"{morning:%Y-%m-%d}: {len(models)} model(s) checked, {report.decisions} decision(s)")
    return report


def last_morning(end: datetime) -> datetime:
    """06:00 UTC of the last simulated day: its 23 hours end at least two hours before ``end``."""
    latest = end - timedelta(hours=25)
    morning = latest.replace(hour=6, minute=0, second=0, microsecond=0)
    return morning if morning <= latest else morning - timedelta(days=1)


def _deliver(rt: Runtime) -> None:
    """Send what the outbox holds now, through the runtime's notifier (the outbox file by
    default), as the ticker's sender would."""
    from prodcontrol.control.escalation.outbox import OutboxSender

    sender = OutboxSender(rt.store, rt.notifier, rt.clock, workers=1)
    try:
        sender.drain()
    finally:
        sender.close()


def _tick_hours(day: int) -> list[float]:
    """When the escalation ticker runs after the morning's controls (every few minutes in real
    life; a handful of times a day is enough to move the chains)."""
    return [0.1, 0.3 + (day % 5) * 0.3, 1.5 + (day % 4)]


def _share_of_timeout(day: int) -> float:
    """How far into the gate's timeout its decision lands: fast some weeks, late on others."""
    return 0.1 + (day * 7 % 9) / 10


def _acknowledge(rt: Runtime, escalation: Any, day: int) -> int:
    """On most days an owner acknowledges the chain the first time the ticker has run."""
    if day % 3 == 2:
        return 0
    done = 0
    for chain in rt.store.list_escalations():
        if chain.status != "active":
            continue
        owners = sorted(escalation.may_acknowledge(rt, chain.model))
        if owners:
            escalation.acknowledge(rt, chain.id, owners[0], "slack")
            done += 1
    return done


def _decide_pending(rt: Runtime, clock: SimulatedClock, day: int) -> int:
    """Right holders approve each pending finding gate before it times out, later some days."""
    from prodcontrol.control.gates import decisions

    done = 0
    for pending in rt.store.list_gates(status="pending"):
        if pending.kind != "finding":
            continue
        gate = pending
        if gate.due_at is not None:  # within the day, however long the tier's timeout
            window = min(gate.due_at - gate.opened_at, DECISION_WINDOW)
            clock.set(gate.opened_at + window * _share_of_timeout(day))
        for n in range(gate.required_approvals):
            people = sorted(decisions.who_could_decide(rt, gate))
            if not people:
                break
            try:
                gate = decisions.decide(
                    rt,
                    gate.id,
                    person=people[(day + n) % len(people)],
                    decision="approve",
                    channel="slack" if day % 2 else "cli",
                    reason="reviewed the drift report; within the model's known seasonality",
                )
            except (DecisionRefused, ProdControlError):
                break
            done += 1
            if gate.status != "pending":
                break
    return done


def _expire(rt: Runtime) -> list[Any]:
    from prodcontrol.control.gates import decisions

    return decisions.expire_due_gates(rt)


def history_runtime(
    rt: Runtime, days: int, now: datetime | None = None
) -> tuple[Runtime, SimulatedClock, datetime]:
    """A runtime over ``rt``'s settings whose clock starts ``days`` ago and whose current data
    drifts in over those days."""
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    start = last_morning(end) - timedelta(days=days - 1)
    clock = SimulatedClock(start)
    references = {
        _key(m.data.current): m.data.reference
        for m in rt.config.controlled_models(None)
        if m.data is not None
    }
    datasets = DriftingDatasets(rt.datasets, references, start, last_morning(end))
    history = Runtime(rt.settings, clock, config=rt.config, registry=rt.registry, datasets=datasets)
    return history, clock, end
