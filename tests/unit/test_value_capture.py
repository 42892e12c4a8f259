"""The value control: KPI shortfall against the use case's target, and its catalog checks."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.schema import ExpectedValue, ValueControl, ValueParams
from prodcontrol.catalog.validate import load_config
from prodcontrol.engine.value import kpi_shortfall, measure_value, shortfall
from prodcontrol.engine.verdicts import decide
from prodcontrol.errors import ConfigError, UnreachableError
from prodcontrol.ports import MetricPoint
from prodcontrol.testing import FakeRegistry

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
EXPECTED = ExpectedValue(
    kpi="retained per 1k", metric_key="retained_per_1k", target=40, review_date=date(2027, 3, 31)
)


def points(*values: float, days_ago: int = 1) -> list[MetricPoint]:
    return [
        MetricPoint(
            key="retained_per_1k", value=v, step=i, at=NOW - timedelta(days=days_ago, hours=i)
        )
        for i, v in enumerate(values)
    ]


def test_shortfall_relative_absolute_and_lower_is_better() -> None:
    assert shortfall(30, EXPECTED, "relative") == 0.25
    assert shortfall(44, EXPECTED, "relative") == 0.0  # beating the target is no shortfall
    assert shortfall(30, EXPECTED, "absolute") == 10
    cost = EXPECTED.model_copy(update={"higher_is_better": False, "target": 100})
    assert shortfall(120, cost, "relative") == 0.2
    with pytest.raises(ValueError, match="target is 0"):
        shortfall(1, EXPECTED.model_copy(update={"target": 0}), "relative")


def test_window_and_aggregate() -> None:
    old = points(0.0, days_ago=60)  # outside the 30-day window: ignored
    value, details, error = kpi_shortfall(old + points(36, 32), EXPECTED, ValueParams(), NOW)
    assert error is None and value == pytest.approx(0.15)  # mean 34 vs 40
    assert details["points"] == 2 and details["observed"] == 34
    last = ValueParams(aggregate="last")
    assert kpi_shortfall(points(36, 32), EXPECTED, last, NOW)[0] == pytest.approx(0.1)  # newest 36
    value, _, error = kpi_shortfall(old, EXPECTED, ValueParams(), NOW)
    assert value is None and error is not None and "widen the window" in error


def test_measure_reads_the_serving_version_and_decides_against_thresholds() -> None:
    config = load_config(default_catalog_dir(), ROOT / "examples")
    control = config.catalog.controls["value-capture"]
    assert isinstance(control, ValueControl)
    model = config.model("churn-classifier")
    registry = FakeRegistry()
    ref = registry.add_version("churn-classifier", "4")
    registry.set_alias("churn-classifier", "champion", "4")
    assert ref.run_id is not None
    registry.history[(ref.run_id, "retained_per_1k")] = points(30, 30)
    measured = measure_value(control, model, registry, NOW)
    assert measured.error is None and measured.value == pytest.approx(0.25)
    assert measured.details["run_id"] == ref.run_id
    verdict = decide(control.id, measured.value, control.thresholds, details=measured.details)
    assert verdict.verdict == "fail"  # 25 % short >= fail 0.2

    registry.history.clear()
    assert measure_value(control, model, registry, NOW).error is not None
    registry.reachable = False
    with pytest.raises(UnreachableError):
        measure_value(control, model, registry, NOW)


def test_model_without_use_case_is_an_error_not_a_pass() -> None:
    config = load_config(default_catalog_dir(), ROOT / "examples")
    control = config.catalog.controls["value-capture"]
    assert isinstance(control, ValueControl)
    bare = config.model("churn-classifier").model_copy(update={"use_case": None})
    measured = measure_value(control, bare, FakeRegistry(), NOW)
    assert measured.value is None and "no use_case" in (measured.error or "")


# --------------------------------------------------------------------------- validation


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    catalog, inventory = tmp_path / "catalog", tmp_path / "inventory"
    shutil.copytree(default_catalog_dir(), catalog)
    shutil.copytree(ROOT / "examples", inventory)
    return catalog, inventory


def _problems(dirs: tuple[Path, Path]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(*dirs)
    return [str(p) for p in caught.value.problems]


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_unknown_requested_tier_names_file_and_line(dirs: tuple[Path, Path]) -> None:
    models = dirs[1] / "models.yaml"
    models.write_text(models.read_text().replace("tier_requested: high", "tier_requested: top"))
    (problem,) = _problems(dirs)
    assert problem.startswith(f"{models}:{_line(models, 'tier_requested: top')}: ")
    assert "use_case.tier_requested: unknown tier 'top'; use one of: high, low, medium" in problem


def test_use_case_fields_are_checked(dirs: tuple[Path, Path]) -> None:
    models = dirs[1] / "models.yaml"
    text = models.read_text().replace("review_date: 2027-03-31", "review_date: someday")
    models.write_text(text)
    (problem,) = _problems(dirs)
    assert f"{models}:{_line(models, 'review_date: someday')}: " in problem
    assert "review_date" in problem


def test_value_control_in_a_tier_needs_a_use_case(dirs: tuple[Path, Path]) -> None:
    catalog, inventory = dirs
    tiers = catalog / "tiers.yaml"
    tiers.write_text(
        tiers.read_text().replace(
            "controls: [dataset-drift, dq-missing-share,",
            "controls: [value-capture, dq-missing-share,",
        )
    )
    models = inventory / "models.yaml"
    text = models.read_text()
    start = text.index("    use_case:\n      purpose: Keep retail")
    end = text.index("tier_requested: low\n", start) + len("tier_requested: low\n")
    models.write_text(text[:start] + text[end:])
    (problem,) = _problems(dirs)
    assert "models[churn-classifier].use_case" in problem
    assert "runs the value control 'value-capture'" in problem


def test_business_run_source_needs_a_run_id(dirs: tuple[Path, Path]) -> None:
    controls = dirs[0] / "controls.yaml"
    controls.write_text(
        controls.read_text().replace("source: serving_version_run", "source: business_run")
    )
    (problem,) = _problems(dirs)
    assert f"{controls}:{_line(controls, 'source: business_run')}: " in problem
    assert "needs run_id" in problem
