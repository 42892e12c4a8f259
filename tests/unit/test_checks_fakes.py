"""The check runner's rules on fakes (no MLflow, no Evidently): fast and exact about the numbers.

The same runner against the real systems is in tests/integration/test_checks_runner.py.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from prodcontrol.control.runs.checks import (
    _json_safe,
    close_run,
    exit_code,
    measure_control,
    open_run,
    run_checks,
)
from prodcontrol.evidence.records import WaiverIn
from prodcontrol.ports import MetricPoint
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import (
    FakeDatasetSource,
    FakeDriftChecker,
    FakeRegistry,
    InMemoryEvidenceStore,
    ManualClock,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "credit-limit-regressor"  # medium tier in the example inventory


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock]:
    registry = FakeRegistry()
    registry.add_version(MODEL, "1", {"r2": 0.80}, {"prodcontrol.approved": "true"})
    serving = registry.add_version(MODEL, "2", {"r2": 0.79})
    registry.set_alias(MODEL, "champion", "2")
    clock = ManualClock()
    kpi = "net_revenue_per_card"  # the use case's KPI, above its target of 120: value captured
    registry.history[(serving.run_id, kpi)] = [
        MetricPoint(key=kpi, value=125.0, at=clock.now() - timedelta(days=1))
    ]
    data = FakeDatasetSource()
    declared = ["income", "utilisation", "age", "open_accounts", "employment", "housing"]
    frame = pd.DataFrame({c: [1.0, 2.0, 3.0] for c in declared} | {"prediction": [0.1, 0.2, 0.3]})
    for path in ("data/credit-reference.csv", "data/credit-current.csv"):
        data.add(path, frame, newest_at=clock.now() - timedelta(hours=40))
    checker = FakeDriftChecker(values={"dataset-drift": 0.6, "prediction-drift": 0.01})
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=ROOT / "examples",
        catalog_dir=ROOT / "control_catalog",
    )
    store = InMemoryEvidenceStore(clock=clock)
    rt = Runtime(settings, clock, store=store, registry=registry, datasets=data, checker=checker)
    return rt, registry, checker, clock


def test_numbers_verdicts_and_write_back(
    parts: tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock],
) -> None:
    rt, registry, checker, _ = parts
    steps: list[str] = []
    result = run_checks(rt, MODEL, progress=steps.append)
    verdicts = {v.control: v for v in result.verdicts}
    assert verdicts["performance-vs-baseline"].value == pytest.approx(0.0125)  # 0.01 / 0.80
    assert verdicts["performance-vs-baseline"].verdict == "pass"
    assert verdicts["dataset-drift"].verdict == "fail"
    assert verdicts["data-freshness"].verdict == "warn"  # 40 h against warn 36, fail 72
    assert verdicts["control-run-freshness"].value == 0.0  # the model's first run
    assert (result.exit_code, result.status, result.verdict) == (1, "failed", "fail")
    assert len(steps) == len(result.verdicts) + 2
    assert checker.calls.count("dataset-drift") == 1
    (summary,) = registry.recorded
    assert (summary.version, summary.verdict) == ("2", "fail")
    assert registry.versions[MODEL]["2"].ref.tags["prodcontrol.last_verdict"] == "fail"


def test_waiver_accepts_a_finding_and_run_age_counts_from_the_last_completed_run(
    parts: tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock],
) -> None:
    rt, _, _, clock = parts
    first = run_checks(rt, MODEL)
    (finding,) = [f for f in first.findings if f.control == "dataset-drift"]
    rt.store.grant_waiver(
        WaiverIn(
            finding_id=finding.id,
            model=MODEL,
            control_id="dataset-drift",
            reason="known seasonal shift",
            approver="dana",
            expires_at=clock.now() + timedelta(days=7),
        )
    )
    clock.advance(timedelta(hours=50))
    second = run_checks(rt, MODEL)
    (waived,) = [f for f in second.findings if f.control == "dataset-drift"]
    assert (waived.status, waived.blocking) == ("waived", False)
    age = {v.control: v for v in second.verdicts}["control-run-freshness"]
    assert age.value == pytest.approx(50.0, abs=0.01)
    assert age.verdict == "warn"  # medium tier: warn 30 h, fail 72 h


def test_unreachable_registry_is_exit_3_and_the_failed_write_back_is_an_event(
    parts: tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock],
) -> None:
    rt, registry, _, _ = parts
    ctx = open_run(rt, MODEL, trigger="test")
    registry.reachable = False
    outcomes = [measure_control(rt, ctx, c) for c in ctx.control_ids]
    result = close_run(rt, ctx, outcomes)
    performance = {v.control: v for v in result.verdicts}["performance-vs-baseline"]
    assert performance.verdict == "error" and "unreachable" in performance.reason
    assert (result.exit_code, result.unreachable) == (3, True)
    assert result.writeback_error
    kinds = [e.kind for e in rt.store.events() if e.subject_id == result.run_id]
    assert "mlflow_writeback_failed" in kinds


def test_unknown_control_and_model_are_usage_errors(
    parts: tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock],
) -> None:
    from prodcontrol.errors import UsageError

    rt, _, _, _ = parts
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        open_run(rt, "nope", trigger="test")
    ctx = open_run(rt, MODEL, trigger="test")
    with pytest.raises(UsageError, match="not in tier 'medium'"):
        measure_control(rt, ctx, "no-such-control")


def test_exit_codes_and_json_safety() -> None:
    assert exit_code(["pass", "warn"], blocking=False, unreachable=False) == 0
    assert exit_code(["pass", "warn"], blocking=True, unreachable=False) == 1
    assert exit_code(["error"], blocking=False, unreachable=False) == 1
    assert exit_code(["fail"], blocking=True, unreachable=True) == 3
    import numpy as np

    cleaned = _json_safe({"a": float("nan"), "b": np.float64(1.5), "c": (np.int64(2),)})
    assert cleaned == {"a": None, "b": 1.5, "c": [2]}


def test_a_control_nobody_measured_is_an_error_not_absent(
    parts: tuple[Runtime, FakeRegistry, FakeDriftChecker, ManualClock],
) -> None:
    rt, _, _, _ = parts
    ctx = open_run(rt, MODEL, trigger="test")
    outcomes = [measure_control(rt, ctx, c) for c in ctx.control_ids if c != "dq-schema"]
    result = close_run(rt, ctx, outcomes)
    schema = {v.control: v for v in result.verdicts}["dq-schema"]
    assert schema.verdict == "error" and "not measured" in schema.reason
    assert len(result.verdicts) == len(ctx.control_ids)
