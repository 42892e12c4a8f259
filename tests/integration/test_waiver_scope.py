"""A waiver covers one model version, one control, and verdicts no worse than the one waived.

On the store (SQLite and PostgreSQL): a waiver granted for a ``warn`` used to cover a later
``fail`` of the same control on any later version, with no gate and no escalation.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from gate_world import TickingClock, make_runtime, record_finding, seeded_registry

from prodcontrol.control.gates import waivers
from prodcontrol.engine.findings import plan_findings
from prodcontrol.engine.verdicts import decide
from prodcontrol.errors import StoreConflict
from prodcontrol.runtime import Runtime

MEDIUM = "credit-limit-regressor"


@pytest.fixture
def rt(database_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(database_url, tmp_path, TickingClock(), seeded_registry())


def planned(rt: Runtime, value: float, version: str) -> tuple[str, bool]:
    entry = rt.config.model(MEDIUM)
    tier = rt.config.tier(entry)
    controls = {c.id: c for c in rt.config.controls_for(entry)}
    decided = decide("dataset-drift", value, controls["dataset-drift"].thresholds)
    now = rt.clock.now()
    views = waivers.views(rt, MEDIUM, active_at=now)
    [plan] = plan_findings([decided], controls, tier, views, now, model_version=version)
    return plan.verdict, plan.waived


def test_a_warn_waiver_does_not_cover_a_later_fail_or_another_version(rt: Runtime) -> None:
    warned = record_finding(rt, MEDIUM, "2", verdict="warn")
    waivers.grant(
        rt, warned.id, approver="dana", reason="seasonal shift", valid_for=timedelta(days=7)
    )
    thresholds = rt.config.controls_for(rt.config.model(MEDIUM))[0].thresholds
    warn_value = (thresholds.warn or 0) + 0.001
    fail_value = (thresholds.fail or 1) + 0.1
    assert planned(rt, warn_value, "2") == ("warn", True)  # what was waived stays waived
    assert planned(rt, fail_value, "2") == ("fail", False)  # worse: a finding as usual
    assert planned(rt, warn_value, "3") == ("warn", False)  # a new version: as usual


def test_expiry_cannot_reopen_what_a_decision_closed(rt: Runtime) -> None:
    """The expiry sweep's write is conditional on the finding still being waived."""
    warned = record_finding(rt, MEDIUM, "2", verdict="warn")
    waivers.grant(rt, warned.id, approver="dana", reason="seasonal", valid_for=timedelta(days=1))
    rt.store.set_finding_status(warned.id, "closed", "closed at gate g")  # a decision wins
    with pytest.raises(StoreConflict, match="is closed, not waived"):
        rt.store.set_finding_status(warned.id, "open", "waiver expired", expected="waived")
    assert rt.store.get_finding(warned.id).status == "closed"
