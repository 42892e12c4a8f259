"""Control-effectiveness metrics on a store seeded through the store API (the in-memory store).

Every expected number is worked out by hand from the scenario in review_seed.py.
"""

from __future__ import annotations

import pytest
from review_seed import CHURN, CREDIT, FRAUD, at, config, seed_october

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.loader import Inventory
from prodcontrol.control.reports.review_report import gather
from prodcontrol.engine.effectiveness import (
    Effectiveness,
    Period,
    compute,
    expected_slots,
    percentile,
)
from prodcontrol.errors import UsageError

NOW = at(3, 9, month=11)


@pytest.fixture(scope="module")
def october() -> Effectiveness:
    seeder = seed_october()
    period = Period.month("2026-10")
    evidence = gather(seeder.store, period.start, period.end)
    return compute(evidence, config(), period, NOW)


def test_period_parsing_and_previous() -> None:
    period = Period.month("2026-12")
    assert (period.start, period.end) == (at(1, 0, month=12), at(1, 0, month=1).replace(year=2027))
    assert period.previous().label == "2026-11"
    with pytest.raises(UsageError, match="YYYY-MM"):
        Period.month("2026-13")


def test_nearest_rank_percentile() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([1.0, 2.0, 3.0], 0.9) == 3.0  # ceil(2.7) = 3rd
    assert percentile(list(map(float, range(1, 11))), 0.9) == 9.0  # ceil(9.0) = 9th


def test_expected_slots_from_the_tier_cron() -> None:
    october = Period.month("2026-10")
    # Mondays in October 2026: 5, 12, 19, 26
    assert [s.day for s in expected_slots("0 6 * * 1", october.start, october.end)] == [
        5,
        12,
        19,
        26,
    ]
    assert len(expected_slots("0 5 * * *", october.start, october.end)) == 31
    assert len(expected_slots("0 */4 * * *", october.start, october.end)) == 31 * 6
    # the slot at the very start of the period counts
    assert expected_slots("0 0 * * *", october.start, october.end)[0] == october.start


def test_runs_on_schedule_and_missed(october: Effectiveness) -> None:
    # evidence starts with the first run, Oct 1 05:00: the high tier's 00:00 and 04:00 slots
    # that day are before it. churn 2 of 4 (Oct 12 ran twice in one slot), credit 2 of 31,
    # fraud 2 of 30 * 6 + 4 = 184
    assert october.has_evidence
    assert october.by_model[CHURN].runs_expected == 4
    assert october.by_model[CHURN].runs_on_schedule == 2
    assert october.by_tier["medium"].runs_on_schedule == 2
    assert october.by_tier["medium"].runs_missed == 29
    assert october.by_tier["high"].runs_expected == 184
    assert october.by_tier["high"].runs_missed == 182
    assert (october.overall.runs_expected, october.overall.runs_on_schedule) == (219, 6)
    assert october.overall.runs_missed == 213


def test_findings_and_controls(october: Effectiveness) -> None:
    assert october.overall.findings_opened == 5
    assert october.by_model[CREDIT].findings_opened == 2
    fired = [(c.control_id, c.findings, c.waivers) for c in october.by_control]
    assert fired == [
        ("dataset-drift", 2, 0),
        ("dq-missing-share", 2, 2),
        ("performance-vs-baseline", 1, 0),
    ]


def test_time_to_acknowledge_and_decide(october: Effectiveness) -> None:
    ack = october.overall.time_to_acknowledge
    # acknowledged after 1 h (fraud), 2 h (credit), 12 h (churn); fraud's second never
    assert (ack.count, ack.median_s, ack.p90_s) == (3, 7200.0, 43200.0)
    decide = october.overall.time_to_decide
    # decided after 4 h (fraud, two people) and 52 h (credit); the expired gate is not a decision
    assert (decide.count, decide.median_s, decide.p90_s) == (2, 100800.0, 187200.0)
    assert october.by_tier["high"].time_to_decide.median_s == 4 * 3600
    # chen owns churn and fraud: acknowledged after 12 h and 1 h
    assert october.by_owner["chen"].time_to_acknowledge.median_s == 6.5 * 3600


def test_sla_breaches_and_last_step(october: Effectiveness) -> None:
    overall = october.overall
    # ack: fraud 1 h > 30 min, fraud 8 h unanswered > 30 min; decide: credit 52 h > 48 h, expiry
    assert (overall.ack_sla_breaches, overall.decide_sla_breaches) == (2, 2)
    assert overall.sla_breaches == 4
    assert october.by_tier["high"].sla_breaches == 3
    assert october.by_tier["low"].sla_breaches == 0
    assert (overall.escalations_started, overall.escalations_last_step) == (4, 1)


def test_waivers_actions_reviews(october: Effectiveness) -> None:
    overall = october.overall
    assert (overall.waivers_granted, overall.waivers_expired, overall.waivers_renewed) == (2, 1, 1)
    assert (overall.rollbacks, overall.suspensions) == (1, 1)
    assert october.by_model[FRAUD].rollbacks == 1
    # fraud-detector was due on Sep 29, and reviewed (gate approved) on Oct 25
    assert overall.models_overdue_for_review == []
    assert overall.production_models_missing_owner == []


def test_review_overdue_before_the_review_gate() -> None:
    seeder = seed_october()
    september = Period.month("2026-09")
    evidence = gather(seeder.store, september.start, at(1, 0, month=11))
    result = compute(evidence, config(), september, NOW)
    assert result.overall.models_overdue_for_review == [FRAUD]
    assert result.overall.findings_opened == 0
    # no evidence before Oct 1: no run could have been expected in September
    assert not result.has_evidence and result.overall.runs_expected == 0


def test_tier_filter_and_missing_owner() -> None:
    seeder = seed_october()
    base = config()
    models = dict(base.inventory.models)
    owners = models[CHURN].owners.model_copy(update={"operating_risk": None})
    models[CHURN] = models[CHURN].model_copy(update={"owners": owners})
    broken = Config(
        catalog=base.catalog,
        inventory=Inventory(base.inventory.directory, models, dict(base.inventory.people)),
    )
    period = Period.month("2026-10")
    evidence = gather(seeder.store, period.start, period.end)
    low = compute(evidence, broken, period, NOW, tier="low")
    assert set(low.by_tier) == {"low"}
    assert low.overall.production_models_missing_owner == [CHURN]
    assert low.overall.findings_opened == 1
    assert [c.control_id for c in low.by_control] == ["dataset-drift"]
