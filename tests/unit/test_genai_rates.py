"""GenAI evaluation pass rates (pure) and the genai_evaluation control's configuration."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.schema import GenAIEvaluationParams
from prodcontrol.catalog.validate import load_config
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.engine.genai import pass_rates, passed
from prodcontrol.errors import ConfigError
from prodcontrol.ports import Assessment
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeDatasetSource, FakeDriftChecker, FakeRegistry, ManualClock

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def one(name: str, value: object, *, run: str | None = "eval-1", ago: float = 1.0) -> Assessment:
    return Assessment(
        trace_id=f"tr-{name}-{value}-{ago}-{run}",
        name=name,
        value=value,  # type: ignore[arg-type]
        at=NOW - timedelta(hours=ago),
        evaluation_run=run,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("yes", True),
        ("No", False),
        ("PASS", True),
        (0.7, True),
        (0.2, False),
        (1, True),
        ("maybe", None),
        (None, None),
    ],
)
def test_what_passes(value: bool | float | str | None, expected: bool | None) -> None:
    assert passed(value, pass_at=0.5) is expected


def test_the_worst_scorer_decides_and_sources_select() -> None:
    items = [one("safety", "yes") for _ in range(9)] + [one("safety", "no")]
    items += [one("groundedness", True) for _ in range(3)] + [one("groundedness", False)]
    items += [one("safety", False, run=None)]  # a reviewer's feedback on a served trace
    params = GenAIEvaluationParams(scorers=["safety", "groundedness"])
    value, details, error = pass_rates(items, params, since=NOW - timedelta(days=7), until=NOW)
    assert error is None and value == 0.75 and details["worst_scorer"] == "groundedness"
    assert details["scorers"]["safety"]["pass_rate"] == pytest.approx(9 / 11)

    served = params.model_copy(update={"source": "traces", "scorers": ["safety"]})
    value, details, _ = pass_rates(items, served, since=NOW - timedelta(days=7), until=NOW)
    assert value == 0.0 and details["scorers"]["safety"]["assessments"] == 1
    evaluated = params.model_copy(update={"source": "evaluations", "scorers": ["safety"]})
    value, _, _ = pass_rates(items, evaluated, since=NOW - timedelta(days=7), until=NOW)
    assert value == 0.9


def test_too_few_or_old_or_failed_assessments_are_an_error_never_a_pass() -> None:
    params = GenAIEvaluationParams(scorers=["safety"], min_assessments=3)
    old = [one("safety", True, ago=24 * 8) for _ in range(5)]
    broken = [one("safety", None).model_copy(update={"error": "judge timed out"})]
    value, details, error = pass_rates(
        old + broken, params, since=NOW - timedelta(days=7), until=NOW
    )
    assert value is None and error is not None and "safety (0)" in error
    assert details["scorers"]["safety"]["scorer_errors"] == 1


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    catalog, inventory = tmp_path / "catalog", tmp_path / "inventory"
    shutil.copytree(default_catalog_dir(), catalog)
    shutil.copytree(ROOT / "examples", inventory)
    return catalog, inventory


def test_a_pass_rate_control_that_says_higher_is_worse_names_its_line(
    dirs: tuple[Path, Path],
) -> None:
    catalog, inventory = dirs
    controls = catalog / "controls.yaml"
    text = controls.read_text()
    controls.write_text(
        text.replace(
            "{warn: 0.99, fail: 0.97, direction: lower_is_worse",
            "{warn: 0.97, fail: 0.99, direction: higher_is_worse",
        ).replace("{warn: 0.9, fail: 0.8, direction: lower_is_worse, ", "{warn: 0.9, fail: 0.8, ")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, inventory)
    line = next(
        i for i, row in enumerate(controls.read_text().splitlines(), 1) if "id: genai-safety" in row
    )
    [problem] = caught.value.problems
    assert problem.file.endswith("controls.yaml") and line <= problem.line <= line + 8
    assert "lower_is_worse" in problem.message and problem.field.startswith("controls[genai-s")
    # the groundedness control, now without a direction, reads as a pass rate: no problem


def test_a_model_that_is_not_generative_is_not_applicable(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=ROOT / "examples",
        database_url=f"sqlite:///{tmp_path / 'e.db'}",
    )
    registry = FakeRegistry()
    rt = Runtime(
        settings,
        ManualClock(NOW),
        registry=registry,
        datasets=FakeDatasetSource(),
        checker=FakeDriftChecker(),
    )
    registry.add_version("churn-classifier", "3")
    registry.set_alias("churn-classifier", "champion", "3")
    result = run_checks(rt, "churn-classifier")
    verdicts = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    assert verdicts["genai-safety"].verdict == "not_applicable"
    assert "declares no genai" in verdicts["genai-safety"].reason
