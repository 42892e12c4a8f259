"""Art. 73 deadlines, the chain that chases the report, and the report draft (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prodcontrol.catalog.schema import EscalationPolicy, EscalationStep
from prodcontrol.engine import escalation as timing
from prodcontrol.engine import incidents as rules

AWARE = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("case", "days", "clause", "definition"),
    [
        ("death", 10, "Art. 73(4)", "Art. 3(49)(a)"),
        ("critical-infrastructure", 2, "Art. 73(3)", "Art. 3(49)(b)"),
        ("widespread-infringement", 2, "Art. 73(3)", "Art. 3(61)"),
        ("health", 15, "Art. 73(2)", "Art. 3(49)(a)"),
        ("fundamental-rights", 15, "Art. 73(2)", "Art. 3(49)(c)"),
        ("property-environment", 15, "Art. 73(2)", "Art. 3(49)(d)"),
    ],
)
def test_the_deadline_of_each_case(case: str, days: int, clause: str, definition: str) -> None:
    rule = rules.rule_for(case)
    assert (rule.deadline_clause, rule.definition) == (clause, definition)
    assert rules.reporting_deadline(case, AWARE) == AWARE + timedelta(days=days)


def test_an_unknown_case_names_the_cases() -> None:
    with pytest.raises(ValueError, match="death, critical-infrastructure"):
        rules.rule_for("serious")


def test_elapsed_share_of_the_window() -> None:
    deadline = AWARE + timedelta(days=2)
    assert rules.elapsed_share(AWARE, deadline, AWARE) == 0.0
    assert rules.elapsed_share(AWARE, deadline, AWARE + timedelta(days=1)) == 0.5
    assert rules.elapsed_share(AWARE, deadline, AWARE + timedelta(days=3)) == 1.5


def test_the_chain_tells_everyone_at_once_and_reminds_until_the_report() -> None:
    tier = EscalationPolicy(
        steps=[
            EscalationStep(after=timedelta(0), role="model_behaviour"),
            EscalationStep(after=timedelta(hours=4), role="operating_risk"),
            EscalationStep(after=timedelta(days=1), channel="#model-risk"),
        ],
        repeat_every=timedelta(days=1),
        acknowledge_within=timedelta(hours=4),
        decide_within=timedelta(days=2),
    )
    started = AWARE + timedelta(hours=6)
    chain = rules.escalation(tier, "#model-risk", AWARE, started, "critical-infrastructure")
    assert {s.after for s in chain.steps} == {timedelta(0)}
    assert [s.role or s.channel for s in chain.steps] == [
        "model_behaviour",
        "operating_risk",
        "#model-risk",
    ]
    assert chain.acknowledge_within == timedelta(hours=42)  # to the deadline
    first = timing.start(chain, started)
    assert first.positions == (0, 1, 2)
    # reminders go on past the deadline while nobody reports
    late = timing.plan(chain, started, first.step, started + timedelta(days=3))
    assert late is not None and all(timing.is_reminder(chain, p) for p in late.positions)


def test_the_draft_says_what_is_still_to_be_given() -> None:
    facts = rules.IncidentFacts(
        incident_id="g1",
        status="open",
        case="health",
        summary="A caller was ranked routine.",
        system="triage-assistant",
        model_version="4",
        risk_tier="high",
        aware_at=AWARE,
        deadline=rules.reporting_deadline("health", AWARE),
        opened_by="bruno",
        opened_at=AWARE,
    )
    draft = rules.report_draft(facts)
    assert "Provider: _to be given_" in draft and "Affected persons" in draft
    assert "2026-11-17 03:00 UTC (Art. 73(2): 15 days" in draft
    assert "initial (Art. 73(5)" in draft and "Reports submitted: none yet" in draft
