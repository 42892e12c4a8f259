"""The DriftChecker contract: the Evidently adapter and the fake answer the same way.

Only what both can honour is here (return type, errors for data that cannot be measured, the
sample fields). What only real statistics can show is in
tests/integration/test_evidently_checker.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from prodcontrol.adapters.evidently import EvidentlyChecker
from prodcontrol.catalog.schema import DataQualityControl, DriftControl, Sampling
from prodcontrol.ports import Dataset, DriftChecker, Measurement
from prodcontrol.testing import FakeDriftChecker

SAMPLE_KEYS = {
    "strategy",
    "size",
    "seed",
    "rows_total",
    "max_rows",
    "sampled",
    "reference_size",
    "reference_rows_total",
}


@pytest.fixture(params=["fake", "evidently"])
def checker(request: pytest.FixtureRequest) -> DriftChecker:
    return FakeDriftChecker() if request.param == "fake" else EvidentlyChecker()


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "y": rng.uniform(size=rows),
            "kind": rng.choice(["a", "b", "c"], size=rows),
            "pred": rng.choice(["yes", "no"], size=rows),
        }
    )


def dataset(data: pd.DataFrame) -> Dataset:
    return Dataset(frame=data, rows=len(data), columns=list(data.columns), source="memory")


def drift(**params: Any) -> DriftControl:
    return DriftControl(
        id="drift",
        title="Drift",
        severity="high",
        kind="drift",
        thresholds={"warn": 0.2, "fail": 0.4},
        clauses=["c"],
        params=params,
    )


def quality(check: str, **params: Any) -> DataQualityControl:
    return DataQualityControl(
        id=f"dq-{check}",
        title="DQ",
        severity="low",
        kind="data_quality",
        thresholds={"fail": 0.1},
        clauses=["c"],
        params={"check": check, **params},
    )


def run(
    checker: DriftChecker,
    control: Any,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    tmp_path: Path,
    *,
    prediction_column: str | None = None,
    max_rows: int = 200,
) -> Measurement:
    return checker.measure(
        control,
        dataset(reference),
        dataset(current),
        sampling=Sampling(max_rows=max_rows, seed=11),
        prediction_column=prediction_column,
        out_dir=str(tmp_path),
    )


def test_is_a_drift_checker(checker: DriftChecker) -> None:
    assert isinstance(checker, DriftChecker)


@pytest.mark.parametrize(
    "control",
    [
        drift(),
        drift(columns=["x", "kind"]),
        quality("missing_share"),
        quality("schema"),
        quality("out_of_range"),
        quality("unseen_categories"),
    ],
    ids=lambda c: c.id if not hasattr(c.params, "columns") or not c.params.columns else "columns",
)
def test_returns_a_measurement_with_a_value(
    checker: DriftChecker, control: Any, tmp_path: Path
) -> None:
    measurement = run(checker, control, frame(150, 1), frame(150, 2), tmp_path)
    assert isinstance(measurement, Measurement)
    assert measurement.control_id == control.id
    assert measurement.error is None
    assert isinstance(measurement.value, float)


def test_prediction_scope_measures_the_prediction_column(
    checker: DriftChecker, tmp_path: Path
) -> None:
    control = drift(scope="prediction").model_copy(
        update={
            "thresholds": drift().thresholds.model_copy(
                update={"direction": "lower_is_worse", "warn": 0.1, "fail": 0.05}
            )
        }
    )
    measurement = run(
        checker, control, frame(150, 1), frame(150, 2), tmp_path, prediction_column="pred"
    )
    assert measurement.error is None and isinstance(measurement.value, float)


@pytest.mark.parametrize(
    "control", [drift(columns=["x", "gone"]), quality("out_of_range", columns=["gone"])]
)
def test_a_missing_column_is_an_error_never_a_value(
    checker: DriftChecker, control: Any, tmp_path: Path
) -> None:
    measurement = run(checker, control, frame(150, 1), frame(150, 2), tmp_path)
    assert measurement.value is None
    assert measurement.error and "gone" in measurement.error


def test_empty_current_data_is_an_error(checker: DriftChecker, tmp_path: Path) -> None:
    measurement = run(checker, drift(), frame(150, 1), frame(150, 2).iloc[:0], tmp_path)
    assert measurement.value is None
    assert measurement.error and "empty" in measurement.error


def test_prediction_scope_without_a_prediction_column_is_an_error(
    checker: DriftChecker, tmp_path: Path
) -> None:
    measurement = run(checker, drift(scope="prediction"), frame(150, 1), frame(150, 2), tmp_path)
    assert measurement.value is None
    assert measurement.error and "prediction" in measurement.error


@pytest.mark.parametrize(("rows", "sampled"), [(150, False), (600, True)])
def test_sample_info(checker: DriftChecker, tmp_path: Path, rows: int, sampled: bool) -> None:
    measurement = run(checker, drift(), frame(rows, 1), frame(rows, 2), tmp_path, max_rows=200)
    sample = measurement.sample
    assert set(sample) >= SAMPLE_KEYS
    assert sample["seed"] == 11
    assert sample["max_rows"] == 200
    assert sample["rows_total"] == rows
    assert sample["sampled"] is sampled
    assert sample["size"] == min(rows, 200)
    assert sample["strategy"] in ({"stratified", "uniform"} if sampled else {"none"})


def test_errors_carry_sample_info_too(checker: DriftChecker, tmp_path: Path) -> None:
    measurement = run(checker, drift(columns=["gone"]), frame(150, 1), frame(150, 2), tmp_path)
    assert set(measurement.sample) >= SAMPLE_KEYS
    assert measurement.sample["rows_total"] == 150
