"""The escalation schedule, pure: positions, batches, reminders, dead-letter moves, SLA breaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prodcontrol.catalog.schema import EscalationPolicy, EscalationStep
from prodcontrol.engine import escalation as timing

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)

HIGH = EscalationPolicy(
    steps=[
        EscalationStep(after=timedelta(0), role="model_behaviour"),
        EscalationStep(after=timedelta(0), role="operating_risk"),
        EscalationStep(after=H, role="business_outcome"),
        EscalationStep(after=2 * H, channel="#model-risk"),
    ],
    repeat_every=H,
    acknowledge_within=timedelta(minutes=30),
    decide_within=4 * H,
)
NO_REPEAT = HIGH.model_copy(update={"repeat_every": None})


def test_start_sends_every_step_due_at_once() -> None:
    first = timing.start(HIGH, T0)
    assert first.positions == (0, 1)
    assert first.step == 2
    assert first.next_due_at == T0 + H


def test_nothing_is_due_before_its_time() -> None:
    assert timing.plan(HIGH, T0, 2, T0 + 59 * timedelta(minutes=1)) is None


def test_overdue_steps_are_sent_together_in_order() -> None:
    late = timing.plan(HIGH, T0, 2, T0 + 2 * H + timedelta(minutes=5))
    assert late is not None
    assert late.positions == (2, 3)
    assert late.next_due_at == T0 + 3 * H  # the first reminder


def test_reminders_repeat_until_decide_within_then_the_chain_is_exhausted() -> None:
    assert timing.position_offset(HIGH, 4) == 3 * H
    assert timing.position_offset(HIGH, 5) == 4 * H
    assert timing.position_offset(HIGH, 6) is None
    last = timing.plan(HIGH, T0, 5, T0 + 4 * H)
    assert last is not None and last.positions == (5,) and last.next_due_at is None
    assert timing.is_reminder(HIGH, 4) and not timing.is_reminder(HIGH, 3)


def test_without_repeat_the_chain_ends_after_its_last_step() -> None:
    last = timing.plan(NO_REPEAT, T0, 3, T0 + 2 * H)
    assert last is not None and last.next_due_at is None
    assert timing.plan(NO_REPEAT, T0, 4, T0 + 10 * H) is None


def test_a_reminder_goes_to_every_role_of_the_chain() -> None:
    names = [t.name for t in timing.target_of(HIGH, 4)]
    assert names == ["model_behaviour", "operating_risk", "business_outcome"]
    assert timing.target_of(HIGH, 3) == [timing.Target("channel", "#model-risk")]


def test_force_moves_on_before_the_next_step_is_due() -> None:
    forced = timing.plan(HIGH, T0, 2, T0 + timedelta(minutes=1), force=True)
    assert forced is not None and forced.positions == (2,)
    assert forced.next_due_at == T0 + 2 * H


def test_current_batch_is_the_positions_sent_last_together() -> None:
    assert timing.current_batch(HIGH, T0, 2) == (0, 1)
    assert timing.current_batch(HIGH, T0, 3) == (2,)
    assert timing.current_batch(HIGH, T0, 0) == ()


def test_breaches() -> None:
    assert timing.breaches(HIGH, T0, T0 + timedelta(minutes=10)) == []
    assert timing.breaches(HIGH, T0, T0 + H) == ["acknowledge"]
    acked = T0 + timedelta(minutes=20)
    assert timing.breaches(HIGH, T0, T0 + 5 * H, acknowledged_at=acked) == ["decide"]
    decided = T0 + timedelta(minutes=25)
    assert timing.breaches(HIGH, T0, T0 + 9 * H, decided_at=decided) == []
