"""Model review: a review gate on the tier's cadence, completed against the catalog checklist."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from gate_world import make_runtime, seeded_registry

from prodcontrol.control.lifecycle import model_review
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock

CHECKLIST = [
    "performance still fit for purpose",
    "data and assumptions still valid",
    "owners still correct",
    "thresholds and escalation still right",
]


@pytest.fixture
def rt(sqlite_url: str, tmp_path: Path) -> Runtime:
    # fraud-detector (high, every 90 d) was last reviewed 2026-10-01: 90 % of 90 d is Dec 21
    clock = ManualClock(datetime(2026, 12, 22, 9, 0, tzinfo=UTC))
    return make_runtime(sqlite_url, tmp_path, clock, seeded_registry())


def test_due_review_opens_one_gate_with_the_checklist(rt: Runtime) -> None:
    opened = model_review.open_due_reviews(rt)
    assert [g.model for g in opened] == ["fraud-detector"]  # the others are not due yet
    gate = opened[0]
    assert gate.kind == "review" and gate.required_approvals == 2  # high tier: two people
    assert gate.context["checklist"] == CHECKLIST
    assert [g.id for g in model_review.open_due_reviews(rt)] == [gate.id]  # not doubled


def test_completing_the_review_records_who_checked_what_and_resets_the_clock(
    rt: Runtime,
) -> None:
    (gate,) = model_review.open_due_reviews(rt)
    with pytest.raises(DecisionRefused, match="missing: owners still correct"):
        model_review.complete(rt, "fraud-detector", person="chen", checked=CHECKLIST[:2])
    with pytest.raises(UsageError, match="not on fraud-detector's review checklist"):
        model_review.complete(rt, "fraud-detector", person="chen", checked=["looks fine"])
    with pytest.raises(DecisionRefused, match="does not hold"):
        model_review.complete(rt, "fraud-detector", person="amara", checked=CHECKLIST)
    first = model_review.complete(rt, "fraud-detector", person="chen", checked=CHECKLIST)
    assert first.status == "pending"  # two-person rule on the high tier
    done = model_review.complete(
        rt, "fraud-detector", person="gustav", checked=CHECKLIST, notes="drift stable"
    )
    assert done.id == gate.id and done.status == "approved"
    reasons = {d.person: d.reason for d in rt.store.decisions_for(gate.id)}
    assert reasons["gustav"].endswith("notes: drift stable")
    assert reasons["chen"].startswith("checked: performance still fit for purpose;")
    events = [e for e in rt.store.events() if e.kind == "model_review_checklist"]
    assert [e.payload["person"] for e in events] == ["chen", "gustav"]  # log order
    entry = rt.config.model("fraud-detector")
    assert model_review.last_review_date(rt, entry) == date(2026, 12, 22)
    assert model_review.open_due_reviews(rt) == []  # the clock was reset
