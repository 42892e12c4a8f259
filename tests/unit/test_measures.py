from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from prodcontrol.catalog.schema import ModelEntry, PerformanceParams
from prodcontrol.engine.measures import age_hours, missing_owners, performance_drop, review_elapsed


def test_relative_and_absolute_drop() -> None:
    assert performance_drop(0.76, 0.80, PerformanceParams()) == pytest.approx(0.05)
    assert performance_drop(0.76, 0.80, PerformanceParams(mode="absolute")) == pytest.approx(0.04)
    rmse = PerformanceParams(higher_is_better=False)
    assert performance_drop(12.0, 10.0, rmse) == pytest.approx(0.2)
    assert performance_drop(0.9, 0.8, PerformanceParams()) < 0  # improved
    with pytest.raises(ValueError, match="absolute"):
        performance_drop(1.0, 0.0, PerformanceParams())


def test_age_and_review() -> None:
    now = datetime(2026, 11, 2, 12, tzinfo=UTC)
    assert age_hours(now - timedelta(hours=30), now) == pytest.approx(30)
    assert age_hours(now + timedelta(hours=1), now) == 0
    assert review_elapsed(date(2026, 8, 4), now, timedelta(days=90)) == pytest.approx(1.0)


def test_missing_owners_only_counts_the_controls_roles() -> None:
    model = ModelEntry.model_validate(
        {
            "name": "m",
            "tier": "low",
            "stage": "experimentation",
            "owners": {"business_outcome": "a", "data_domain": "b"},
        }
    )
    assert missing_owners(model, ["business_outcome", "model_behaviour"]) == ["model_behaviour"]
