"""The gate rules of the pure core: who may decide, two people, separation of duties, timeouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

import pytest

from prodcontrol.catalog.validate import load_config
from prodcontrol.engine import gates
from prodcontrol.engine.gates import Accepted, Refusal, evaluate_decision
from prodcontrol.evidence.records import Decision, DecisionValue, Gate

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HOLDERS = {"chen", "dana", "gustav"}


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config(ROOT / "control_catalog", ROOT / "examples")


def gate(
    required: int = 2,
    kind: str = "finding",
    requested_by: str | None = None,
    status: str = "pending",
    due: timedelta | None = timedelta(hours=8),
) -> Gate:
    return Gate(
        id="g1",
        finding_id="f1",
        model="fraud-detector",
        model_version="3",
        kind=kind,  # type: ignore[arg-type]
        right="escalation_outcome",
        required_approvals=required,
        requested_by=requested_by,
        due_at=NOW + due if due is not None else None,
        on_approve="accept",
        on_reject="rollback",
        on_timeout="suspend",
        status=status,  # type: ignore[arg-type]
        opened_at=NOW,
        version=1,
    )


def said(person: str, decision: DecisionValue = "approve") -> Decision:
    return Decision(
        id=f"d-{person}",
        gate_id="g1",
        person=person,
        decision=decision,
        channel="cli",
        decided_at=NOW,
    )


def judge(
    g: Gate,
    person: str,
    decision: DecisionValue = "approve",
    *,
    prior: list[Decision] | None = None,
    sod: bool = True,
    at: datetime = NOW,
    known: bool = True,
) -> Accepted | Refusal:
    return evaluate_decision(
        g,
        person=person,
        decision=decision,
        holders=HOLDERS,
        prior=prior or [],
        separation_of_duties=sod,
        now=at,
        known_person=known,
    )


def test_single_approver_closes_the_gate() -> None:
    result = judge(gate(required=1), "chen")
    assert result == Accepted(new_status="approved", approvals=1, required=1)


def test_two_person_gate_needs_two_distinct_holders() -> None:
    first = judge(gate(), "chen")
    assert first == Accepted(new_status=None, approvals=1, required=2)
    second = judge(gate(), "dana", prior=[said("chen")])
    assert second == Accepted(new_status="approved", approvals=2, required=2)


def test_the_same_person_twice_is_refused_and_names_the_others() -> None:
    result = judge(gate(), "chen", prior=[said("chen")])
    assert isinstance(result, Refusal) and result.code == "already_decided"
    assert result.could_decide == ["dana", "gustav"]
    assert "dana, gustav" in result.message


def test_a_person_without_the_right_is_refused() -> None:
    result = judge(gate(), "amara")
    assert isinstance(result, Refusal) and result.code == "no_right"
    assert "escalation_outcome" in result.message and "chen, dana, gustav" in result.message


def test_unknown_person_is_refused() -> None:
    result = judge(gate(), "mallory", known=False)
    assert isinstance(result, Refusal) and result.code == "unknown_person"


def test_one_reject_closes_the_gate_even_after_an_approval() -> None:
    result = judge(gate(), "dana", "reject", prior=[said("chen")])
    assert result == Accepted(new_status="rejected", approvals=1, required=2)


@pytest.mark.parametrize("status", ["approved", "rejected", "expired"])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_closed_gate_refuses_every_decision(status: str, decision: DecisionValue) -> None:
    result = judge(gate(status=status), "chen", decision)
    assert isinstance(result, Refusal) and result.code == "closed"
    assert status in result.message


def test_a_gate_past_its_due_time_refuses_and_names_the_timeout_action() -> None:
    result = judge(gate(), "chen", at=NOW + timedelta(hours=8))
    assert isinstance(result, Refusal) and result.code == "timed_out"
    assert "suspend" in result.message
    assert isinstance(judge(gate(), "chen", at=NOW + timedelta(hours=7, minutes=59)), Accepted)
    assert isinstance(judge(gate(due=None), "chen", at=NOW + timedelta(days=999)), Accepted)


def test_separation_of_duties_on_a_finding_gate_follows_the_tier() -> None:
    g = gate(requested_by="chen")
    refused = judge(g, "chen", sod=True)
    assert isinstance(refused, Refusal) and refused.code == "separation_of_duties"
    assert refused.could_decide == ["dana", "gustav"]
    assert isinstance(judge(g, "chen", sod=False), Accepted)


@pytest.mark.parametrize("kind", sorted(gates.CHANGE_KINDS))
def test_the_requester_of_a_change_never_approves_it_on_any_tier(kind: str) -> None:
    result = judge(gate(kind=kind, requested_by="dana"), "dana", sod=False)
    assert isinstance(result, Refusal) and result.code == "separation_of_duties"


def test_the_requester_may_reject_withdraw_their_own_change() -> None:
    result = judge(gate(kind="promotion", requested_by="dana"), "dana", "reject")
    assert result == Accepted(new_status="rejected", approvals=0, required=2)


def test_exhaustive_two_person_sequences() -> None:
    """Every pair of (person, decision) on a two-person gate with a requester: rules hold."""
    people = sorted(HOLDERS | {"amara"})
    for (p1, d1), (p2, d2) in product(product(people, ["approve", "reject"]), repeat=2):
        g = gate(requested_by="gustav")
        first = judge(g, p1, d1)  # type: ignore[arg-type]
        allowed_first = p1 in HOLDERS and not (p1 == "gustav" and d1 == "approve")
        assert isinstance(first, Accepted) == allowed_first, (p1, d1)
        if not isinstance(first, Accepted) or first.new_status is not None:
            continue
        second = judge(g, p2, d2, prior=[said(p1, d1)])  # type: ignore[arg-type]
        allowed = p2 in HOLDERS and p2 != p1 and not (p2 == "gustav" and d2 == "approve")
        assert isinstance(second, Accepted) == allowed, (p1, d1, p2, d2)
        if isinstance(second, Accepted):
            assert second.new_status == ("approved" if d2 == "approve" else "rejected")


def test_can_ever_close_when_too_few_eligible_people_remain() -> None:
    g = gate(requested_by="chen")
    assert gates.can_ever_close(g, {"chen", "dana", "gustav"}, [], True)
    assert not gates.can_ever_close(g, {"chen", "dana"}, [], True)
    assert gates.can_ever_close(g, {"chen", "dana"}, [], False)


def test_expiries_and_outcome_actions() -> None:
    pending, closed = gate(), gate(status="approved")
    due = gates.expiries([pending, closed], NOW + timedelta(hours=9))
    assert due == [gates.Expiry(gate_id="g1", action="suspend")]
    assert gates.expiries([pending], NOW) == []
    assert gates.outcome_action(gate(status="approved")) == "accept"
    assert gates.outcome_action(gate(status="rejected")) == "rollback"
    assert gates.outcome_action(gate(status="expired")) == "suspend"
    assert gates.outcome_action(pending) is None


def test_finding_gates_follow_each_tier(config) -> None:  # type: ignore[no-untyped-def]
    tiers = config.catalog.tiers
    high = gates.finding_gate(
        tiers["high"], model="fraud-detector", model_version="3", finding_id="f", now=NOW
    )
    policy = tiers["high"].gate
    assert (high.required_approvals, high.on_timeout, high.on_reject) == (
        2,
        policy.on_timeout,
        policy.on_reject,
    )
    assert high.due_at == NOW + timedelta(hours=8) and high.right == "escalation_outcome"
    medium = gates.finding_gate(
        tiers["medium"], model="credit-limit-regressor", model_version="1", finding_id="f", now=NOW
    )
    assert (medium.required_approvals, medium.on_timeout) == (1, "accept")
    with pytest.raises(ValueError, match="none"):
        gates.finding_gate(tiers["low"], model="m", model_version="1", finding_id="f", now=NOW)


def test_lifecycle_gates_need_at_least_one_approver(config) -> None:  # type: ignore[no-untyped-def]
    tiers = config.catalog.tiers
    low = gates.lifecycle_gate(
        tiers["low"],
        "promotion",
        model="m",
        model_version="2",
        requested_by="chen",
        now=NOW,
        on_approve="promote",
    )
    assert (low.required_approvals, low.right, low.on_timeout) == (1, "deploy", None)
    high = gates.lifecycle_gate(
        tiers["high"],
        "retire",
        model="m",
        model_version="2",
        requested_by="chen",
        now=NOW,
        on_approve="retire",
    )
    assert (high.required_approvals, high.right) == (2, "shutdown")


def test_decision_rights_resolve_by_role_per_tier(config) -> None:  # type: ignore[no-untyped-def]
    fraud = config.model("fraud-detector")
    assert config.holders_of(fraud, "escalation_outcome") == {"chen", "dana", "gustav"}
    assert config.holders_of(fraud, "exception") == {"gustav", "hana"}
    credit = config.model("credit-limit-regressor")
    assert config.holders_of(credit, "exception") == {"dana"}
