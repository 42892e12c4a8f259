"""Use-case approval: two gates (use_case and funding rights) decided through decisions.decide."""

from __future__ import annotations

from pathlib import Path

import pytest
from gate_world import make_runtime, seeded_registry

from prodcontrol.control.lifecycle import usecase
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock

MODEL = "pricing-experiment"  # medium tier; business_outcome hana holds use_case and funding


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(database_url, tmp_path, ManualClock(), seeded_registry())


def test_request_opens_one_gate_per_right_and_is_idempotent(rt: Runtime) -> None:
    gates = usecase.request(rt, MODEL, requested_by="emeka")
    assert sorted(g.right for g in gates) == ["funding", "use_case"]
    assert all(g.kind == "use_case" and g.status == "pending" for g in gates)
    assert gates[0].context["use_case"]["expected_value"]["metric_key"] == "margin_uplift"
    again = usecase.request(rt, MODEL, requested_by="emeka")
    assert {g.id for g in again} == {g.id for g in gates}
    assert not usecase.status(rt, MODEL).approved


def test_person_without_the_right_is_refused_and_recorded(rt: Runtime) -> None:
    usecase.request(rt, MODEL, requested_by="emeka")
    with pytest.raises(DecisionRefused, match="does not hold the 'use_case' decision right"):
        usecase.decide(rt, MODEL, person="chen", decision="approve")
    refused = [e for e in rt.store.events() if e.kind == "decision_refused"]
    assert len(refused) == 1 and refused[0].payload["person"] == "chen"
    assert refused[0].payload["refused"] == "no_right"
    assert refused[0].payload["could_decide"] == ["hana"]
    assert all(g.status == "pending" for g in usecase.use_case_gates(rt, MODEL))
    with pytest.raises(DecisionRefused, match="use case not approved"):
        usecase.require_approved(rt, MODEL)


def test_holder_of_both_rights_approves_with_conditions(rt: Runtime) -> None:
    usecase.request(rt, MODEL, requested_by="emeka")
    decided = usecase.decide(
        rt,
        MODEL,
        person="hana",
        decision="approve",
        reason="worth a pilot",
        conditions=["pilot limited to two regions", "review margin after 8 weeks"],
    )
    assert sorted(g.right for g in decided) == ["funding", "use_case"]
    assert all(g.status == "approved" for g in decided)
    found = usecase.status(rt, MODEL)
    assert found.approved and found.gates == {"use_case": "approved", "funding": "approved"}
    usecase.require_approved(rt, MODEL)
    reasons = {d.reason for g in decided for d in rt.store.decisions_for(g.id)}
    assert reasons == {
        "worth a pilot; conditions: pilot limited to two regions; review margin after 8 weeks"
    }
    (event,) = [e for e in rt.store.events() if e.kind == "use_case_conditions"]
    assert event.payload["conditions"][0] == "pilot limited to two regions"


def test_requester_cannot_be_the_only_approver(rt: Runtime) -> None:
    with pytest.raises(UsageError, match="nobody but the requester holds the 'use_case' right"):
        usecase.request(rt, MODEL, requested_by="hana")


def test_only_experimentation_models_ask_for_a_use_case(rt: Runtime) -> None:
    with pytest.raises(UsageError, match="in production"):
        usecase.request(rt, "fraud-detector", requested_by="chen")


def test_tier_change_is_a_gated_recorded_change(rt: Runtime) -> None:
    from prodcontrol.control.gates import decisions

    with pytest.raises(UsageError, match="needs a reason"):
        usecase.request_tier_change(
            rt, "credit-limit-regressor", "high", requested_by="emeka", reason=""
        )
    gate = usecase.request_tier_change(
        rt, "credit-limit-regressor", "high", requested_by="emeka", reason="limits now automated"
    )
    assert (gate.kind, gate.right, gate.required_approvals) == ("tier_change", "change", 2)
    assert gate.context == {
        "from_tier": "medium",
        "to_tier": "high",
        "reason": "limits now automated",
    }
    again = usecase.request_tier_change(
        rt, "credit-limit-regressor", "high", requested_by="emeka", reason="again"
    )
    assert again.id == gate.id
    # medium's change right is model_behaviour (emeka): the requester may not approve his own
    with pytest.raises(DecisionRefused, match="separation of duties"):
        decisions.decide(
            rt, gate.id, person="emeka", decision="approve", channel="cli", reason="test reason"
        )
