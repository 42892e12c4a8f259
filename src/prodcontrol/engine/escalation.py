"""Escalation timing, pure: which positions of a chain are due at a time, and which SLAs broke.

A chain is the tier's ``EscalationPolicy``: ordered steps (``after`` the escalation started),
then, with ``repeat_every``, reminders until ``decide_within`` has passed. Every step and every
reminder is a *position* ``0, 1, 2, ...``; an escalation's ``step`` counts the positions already
notified, so it is also the index of the next one. Positions due at the same instant form a
*batch* and go out together (high tier: two owners at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from prodcontrol.catalog.schema import EscalationPolicy

Breach = Literal["acknowledge", "decide"]


@dataclass(frozen=True)
class Target:
    """Who a position notifies: an owner/global role, or a channel."""

    kind: Literal["role", "channel"]
    name: str


@dataclass(frozen=True)
class Advance:
    """What to do now: notify ``positions``, then store ``step`` and ``next_due_at``.

    ``next_due_at`` ``None`` means the chain is exhausted after this batch.
    """

    positions: tuple[int, ...]
    step: int
    next_due_at: datetime | None


def position_offset(policy: EscalationPolicy, position: int) -> timedelta | None:
    """How long after the start ``position`` is due; ``None`` past the end of the chain."""
    steps = policy.steps
    if position < len(steps):
        return steps[position].after
    if policy.repeat_every is None or policy.repeat_every <= timedelta(0):
        return None
    offset = steps[-1].after + (position - len(steps) + 1) * policy.repeat_every
    return offset if offset <= policy.decide_within else None


def is_reminder(policy: EscalationPolicy, position: int) -> bool:
    return position >= len(policy.steps)


def target_of(policy: EscalationPolicy, position: int) -> list[Target]:
    """The targets of a position; a reminder goes to every role of the chain again."""
    if position < len(policy.steps):
        step = policy.steps[position]
        return [Target("role", step.role) if step.role else Target("channel", step.channel or "")]
    seen: dict[str, Target] = {}
    for step in policy.steps:
        if step.role is not None:
            seen.setdefault(step.role, Target("role", step.role))
    return list(seen.values())


def due_at(policy: EscalationPolicy, started_at: datetime, position: int) -> datetime | None:
    offset = position_offset(policy, position)
    return None if offset is None else started_at + offset


def plan(
    policy: EscalationPolicy, started_at: datetime, step: int, now: datetime, *, force: bool = False
) -> Advance | None:
    """The positions due at ``now`` from ``step`` on, or ``None`` when nothing is due.

    ``force`` sends the next batch now even if it is not due yet (a dead-lettered message moves
    the chain on). The batch then includes every position due at the same instant as the first.
    """
    first = due_at(policy, started_at, step)
    if first is None:
        return None
    if not force and first > now:
        return None
    horizon = max(now, first)
    positions = []
    position = step
    while (when := due_at(policy, started_at, position)) is not None and when <= horizon:
        positions.append(position)
        position += 1
    return Advance(tuple(positions), position, due_at(policy, started_at, position))


def start(policy: EscalationPolicy, started_at: datetime) -> Advance:
    """The first batch: every position due when the escalation starts (at least the first)."""
    advance = plan(policy, started_at, 0, started_at, force=True)
    assert advance is not None  # a policy has at least one step
    return advance


def current_batch(policy: EscalationPolicy, started_at: datetime, step: int) -> tuple[int, ...]:
    """The positions of the batch sent last (those due at the same instant as ``step - 1``)."""
    if step <= 0:
        return ()
    last = due_at(policy, started_at, step - 1)
    return tuple(p for p in range(step) if due_at(policy, started_at, p) == last)


def breaches(
    policy: EscalationPolicy,
    started_at: datetime,
    now: datetime,
    *,
    acknowledged_at: datetime | None = None,
    decided_at: datetime | None = None,
) -> list[Breach]:
    """Which SLAs this escalation broke by ``now`` (or by the time it was acted on)."""
    found: list[Breach] = []
    acted = acknowledged_at or decided_at
    if (acted or now) - started_at > policy.acknowledge_within:
        found.append("acknowledge")
    if (decided_at or now) - started_at > policy.decide_within:
        found.append("decide")
    return found
