"""Segments and delayed labels in the pure engine, on frames small enough to check by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from prodcontrol.catalog.schema import (
    DataSpec,
    PerformanceEstimatedParams,
    PerformanceRealizedParams,
)
from prodcontrol.engine import performance as perf
from prodcontrol.engine.model_performance import estimated, join_labels, realized
from prodcontrol.engine.segments import measure_segments, segment_note, worst_value

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
SOURCE = {"type": "file", "path": "x.csv"}


def _spec(**extra: object) -> DataSpec:
    return DataSpec.model_validate(
        {
            "reference": SOURCE,
            "current": {**SOURCE, "time_column": "scored_at"},
            "task": "classification",
            "score_column": "score",
            "target_column": "label",
            "labels": {
                "source": SOURCE,
                "id_column": "request_id",
                "time_column": "labelled_at",
            },
            **extra,
        }
    )


def test_segments_worst_value_and_minimum_size_golden() -> None:
    reference = pd.DataFrame({"region": ["n"] * 5 + ["s"] * 5 + ["e"] * 2, "v": range(12)})
    current = pd.DataFrame({"region": ["n"] * 4 + ["s"] * 6 + ["e"] * 9, "v": range(19)})
    values = {"n": 0.1, "s": 0.6}
    found = measure_segments(
        reference,
        current,
        ["region"],
        min_size=4,
        measure=lambda ref, cur, col: values[cur[col].iloc[0]],
        refused=(ValueError,),
    )
    by = {s.segment: s for s in found}
    assert (by["e"].reference_rows, by["e"].current_rows, by["e"].value) == (2, 9, None)
    assert by["e"].not_judged == "2 rows in the reference data, below min_segment_size 4"
    assert (by["s"].current_rows, by["s"].value) == (6, 0.6)
    value, worst = worst_value(0.2, found, higher_is_worse=True)
    assert value == 0.6 and worst is not None and worst.segment == "s"
    value, worst = worst_value(0.2, found, higher_is_worse=False)  # p-values: lower is worse
    assert value == 0.1 and worst is not None and worst.segment == "n"


def test_a_segment_that_cannot_be_measured_is_not_judged_with_the_reason() -> None:
    frame = pd.DataFrame({"g": ["a", "a", "b", "b"]})

    def measure(ref: pd.DataFrame, cur: pd.DataFrame, col: str) -> float:
        if cur[col].iloc[0] == "b":
            raise perf.PerformanceError("ROC AUC needs both classes")
        return 0.0

    found = measure_segments(
        frame, frame, ["g"], min_size=1, measure=measure, refused=(perf.PerformanceError,)
    )
    assert [s.not_judged for s in found] == [None, "ROC AUC needs both classes"]


def test_estimated_names_the_worst_segment_and_its_size() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    scores = rng.random(n)
    labels = (rng.random(n) < scores).astype(int)
    reference = pd.DataFrame(
        {"score": scores, "label": labels, "region": rng.choice(["n", "s"], n)}
    )
    current = reference.copy()
    # in the south the model now scores everybody close to 0.5: uncertain, so worse
    south = current["region"] == "s"
    current.loc[south, "score"] = 0.45 + 0.1 * rng.random(int(south.sum()))
    spec = _spec(segments=["region"])
    out = estimated(PerformanceEstimatedParams(min_segment_size=50), spec, reference, current)
    worst = out.details["worst_segment"]
    assert worst["segment"] == "s" and worst["rows"] == int(south.sum())
    assert out.value == pytest.approx(worst["value"]) and out.value > out.details["overall_value"]
    note = segment_note(out.details)
    assert note is not None and f"region=s ({int(south.sum())} rows)" in note


def _predictions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d", "e"],
            "score": [0.9, 0.2, 0.8, 0.3, 0.6],
            "scored_at": [NOW - timedelta(days=d) for d in (40, 5, 4, 3, 1)],
        }
    )


def _labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "c", "d", "zz"],
            "label": [1, 0, 0, 1, 0, 1],
            "labelled_at": [NOW - timedelta(days=d) for d in (39, 4, 3, 2, 0.5, 1)],
        }
    )


def test_join_by_id_in_the_window_with_the_latest_label_golden() -> None:
    spec = _spec()
    params = PerformanceRealizedParams(window=timedelta(days=30), metric="accuracy")
    assert spec.labels is not None
    joined = join_labels(
        params, spec, spec.labels, _predictions(), _labels(), now=NOW, prediction_time="scored_at"
    )
    # 'a' is older than the window, 'e' has no label yet, 'zz' matches no prediction, 'c' was
    # labelled twice (the latest, 1, counts)
    assert (joined.predictions, joined.labelled) == (4, 3)
    assert joined.coverage == pytest.approx(0.75)
    assert joined.details["duplicate_labels"] == 1
    assert joined.details["labels_without_prediction"] == 2  # 'a' (out of window) and 'zz'
    assert dict(zip(joined.frame["request_id"], joined.frame["label"], strict=True)) == {
        "b": 0,
        "c": 1,
        "d": 0,
    }
    out = realized(
        params, spec, joined, reference=pd.DataFrame({"score": [0.9, 0.1], "label": [1, 0]})
    )
    # accuracy on b (0.2 -> 0, right), c (0.8 -> 1, right), d (0.3 -> 0, right) = 1.0 vs 1.0
    assert out.details["realized"] == 1.0 and out.value == 0.0 and out.details["coverage"] == 0.75


def test_max_label_delay_and_minimum_coverage() -> None:
    spec = _spec()
    assert spec.labels is not None
    params = PerformanceRealizedParams(
        window=timedelta(days=30), max_label_delay=timedelta(hours=30), min_coverage=0.6
    )
    joined = join_labels(
        params, spec, spec.labels, _predictions(), _labels(), now=NOW, prediction_time="scored_at"
    )
    # b: 1 day after (in), c: latest label 2 days after (out), d: 2.5 days after (out)
    assert (joined.predictions, joined.labelled) == (4, 1)
    assert joined.details["labels_outside_delay"] == 2
    out = realized(params, spec, joined, reference=None)
    assert out.value is None and out.not_applicable is not None
    assert (
        "label coverage 25.0% (1 of 4 predictions labelled) is below min_coverage 60%"
        in out.not_applicable
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("current", "data.labels.id_column 'request_id' is not in the current data"),
        ("labels", "data.labels.id_column 'request_id' is not in the labels data"),
    ],
)
def test_a_missing_id_column_names_the_key_and_the_columns(frame: str, message: str) -> None:
    spec = _spec()
    assert spec.labels is not None
    predictions, labels = _predictions(), _labels()
    if frame == "current":
        predictions = predictions.rename(columns={"request_id": "id"})
    else:
        labels = labels.rename(columns={"request_id": "id"})
    with pytest.raises(perf.PerformanceError, match=message):
        join_labels(
            PerformanceRealizedParams(),
            spec,
            spec.labels,
            predictions,
            labels,
            now=NOW,
            prediction_time=None,
        )


def test_a_classifier_without_scores_is_told_to_declare_them() -> None:
    spec = _spec(score_column=None)
    frame = pd.DataFrame({"label": [0, 1], "prediction": [0, 1]})
    with pytest.raises(perf.PerformanceError, match=r"set data\.score_column in models\.yaml"):
        estimated(PerformanceEstimatedParams(), spec, frame, frame)
