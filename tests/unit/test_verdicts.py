"""Verdicts and finding plans: the pure core, in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prodcontrol.catalog.schema import DriftControl, Thresholds, TierPolicy
from prodcontrol.engine.findings import WaiverView, plan_findings, run_exit_code
from prodcontrol.engine.verdicts import decide, worst

HIGHER = Thresholds(warn=0.2, fail=0.4, direction="higher_is_worse")
LOWER = Thresholds(warn=0.8, fail=0.7, direction="lower_is_worse", unit="auc")
NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.0, "pass"), (0.19, "pass"), (0.2, "warn"), (0.39, "warn"), (0.4, "fail"), (1.0, "fail")],
)
def test_higher_is_worse(value: float, expected: str) -> None:
    assert decide("c", value, HIGHER).verdict == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.9, "pass"), (0.8, "warn"), (0.75, "warn"), (0.7, "fail"), (0.1, "fail")],
)
def test_lower_is_worse(value: float, expected: str) -> None:
    assert decide("c", value, LOWER).verdict == expected


def test_reason_carries_the_numbers() -> None:
    decided = decide("auc", 0.65, LOWER)
    assert decided.reason == "0.65 auc is at or below fail threshold 0.7 auc"
    assert (decided.value, decided.warn, decided.fail) == (0.65, 0.8, 0.7)


@pytest.mark.parametrize("value", [None, float("nan")])
def test_missing_value_is_error_never_pass(value: float | None) -> None:
    assert decide("c", value, HIGHER).verdict == "error"


def test_explicit_error_wins_over_a_passing_value() -> None:
    decided = decide("c", 0.0, HIGHER, error="MLflow unreachable")
    assert decided.verdict == "error" and decided.reason == "MLflow unreachable"


def test_worst_and_exit_codes() -> None:
    assert worst(["pass", "warn", "pass"]) == "warn"
    assert worst(["fail", "error"]) == "error"
    assert worst([]) == "error"
    assert run_exit_code(["pass", "warn"], unreachable=False) == 0
    assert run_exit_code(["pass", "fail"], unreachable=False) == 1
    assert run_exit_code(["pass"], unreachable=True) == 3


def tier(mode: str, fail_closed: bool, opens_on: list[str]) -> TierPolicy:
    return TierPolicy.model_validate(
        {
            "title": "t",
            "schedule": "0 * * * *",
            "controls": ["d"],
            "sampling": {"max_rows": 10},
            "gate": {
                "mode": mode,
                "opens_on": opens_on,
                "separation_of_duties": mode == "two_person",
            },
            "fail_closed": fail_closed,
            "escalation": {
                "steps": [{"after": "0m", "role": "model_behaviour"}],
                "acknowledge_within": "1h",
                "decide_within": "4h",
            },
            "decision_rights": {
                r: ["model_behaviour"]
                for r in (
                    "deploy",
                    "change",
                    "exception",
                    "escalation_outcome",
                    "shutdown",
                    "use_case",
                    "funding",
                )
            },
            "review_every": "90d",
            "risk_channel": "#risk",
        }
    )


CONTROLS = {
    "d": DriftControl(
        id="d", kind="drift", title="d", severity="high", thresholds=HIGHER, clauses=["x:y"]
    ),
}


def test_low_tier_notifies_only_and_error_does_not_block() -> None:
    plans = plan_findings(
        [decide("d", None, HIGHER)], CONTROLS, tier("none", False, ["fail"]), [], NOW
    )
    (plan,) = plans
    assert (plan.verdict, plan.blocking, plan.opens_gate, plan.escalates) == (
        "error",
        False,
        False,
        True,
    )


def test_fail_closed_tier_blocks_on_error() -> None:
    (plan,) = plan_findings(
        [decide("d", None, HIGHER)], CONTROLS, tier("two_person", True, ["fail"]), [], NOW
    )
    assert plan.blocking and plan.opens_gate


def test_gate_opens_only_on_the_tiers_verdicts_and_pass_is_no_finding() -> None:
    policy = tier("single", False, ["fail"])
    plans = plan_findings([decide("d", 0.3, HIGHER)], CONTROLS, policy, [], NOW)
    assert not plans[0].opens_gate and plans[0].escalates
    assert plan_findings([decide("d", 0.0, HIGHER)], CONTROLS, policy, [], NOW) == []
    assert plan_findings([decide("d", 0.5, HIGHER)], CONTROLS, policy, [], NOW)[0].opens_gate


def test_active_waiver_accepts_but_expired_or_error_does_not() -> None:
    policy = tier("single", True, ["fail"])
    live = WaiverView(control_id="d", expires_at=NOW + timedelta(days=1), verdict="fail")
    expired = WaiverView(control_id="d", expires_at=NOW - timedelta(seconds=1))
    (waived,) = plan_findings([decide("d", 0.5, HIGHER)], CONTROLS, policy, [live], NOW)
    assert waived.waived and not waived.opens_gate and not waived.escalates
    (reopened,) = plan_findings([decide("d", 0.5, HIGHER)], CONTROLS, policy, [expired], NOW)
    assert reopened.opens_gate and not reopened.waived
    (error,) = plan_findings([decide("d", None, HIGHER)], CONTROLS, policy, [live], NOW)
    assert error.blocking and not error.waived
