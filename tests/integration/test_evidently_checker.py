"""EvidentlyChecker against real Evidently 0.7 on real small data and seeded synthetic shifts.

Besides the verdicts, these tests pin the two promises of the large-data design: the scores this
module computes on all rows are Evidently's own numbers (checked against Evidently run on the
same full data), and a sampled run decides every column as a full-data Evidently run does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Report
from evidently import Dataset as EvidentlyDataset
from evidently.metrics import ValueDrift
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from prodcontrol.adapters.evidently import (
    EvidentlyChecker,
    choose_method,
    draw_sample,
    drift_detected,
    wasserstein_sketch,
)
from prodcontrol.catalog.schema import (
    DataQualityControl,
    DataSpec,
    DriftControl,
    Sampling,
    Thresholds,
)
from prodcontrol.engine.verdicts import decide
from prodcontrol.ports import Dataset, Measurement

CHECKER = EvidentlyChecker()
THRESHOLDS = Thresholds(warn=0.2, fail=0.4)


def dataset(data: pd.DataFrame) -> Dataset:
    return Dataset(frame=data, rows=len(data), columns=list(data.columns), source="memory")


def drift(**params: Any) -> DriftControl:
    return DriftControl(
        id="drift",
        title="Drift",
        severity="high",
        kind="drift",
        thresholds=THRESHOLDS,
        clauses=["c"],
        params=params,
    )


def quality(check: str, **params: Any) -> DataQualityControl:
    return DataQualityControl(
        id=f"dq-{check}",
        title="DQ",
        severity="low",
        kind="data_quality",
        thresholds={"fail": 0.05},
        clauses=["c"],
        params={"check": check, **params},
    )


def measure(
    control: Any,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    tmp_path: Path,
    *,
    max_rows: int = 50_000,
    prediction_column: str | None = None,
    seed: int = 5,
    checker: EvidentlyChecker = CHECKER,
    contract: DataSpec | None = None,
) -> Measurement:
    """Measures the control, then renders the run's one report for it, as a control run does:
    the measurement comes back with the report's files and numbers merged in."""
    sampling = Sampling(max_rows=max_rows, seed=seed)
    measured = checker.measure(
        control,
        dataset(reference),
        dataset(current),
        sampling=sampling,
        prediction_column=prediction_column,
        out_dir=str(tmp_path),
        contract=contract,
    )
    if measured.report is None:  # an error or a control that does not apply: nothing to show
        return measured
    report = checker.render_report(
        {control.id: measured},
        dataset(reference),
        dataset(current),
        sampling=sampling,
        out_dir=str(tmp_path),
        title="test",
    )
    assert report.error is None, report.error
    return measured.model_copy(
        update={
            "details": report.details[control.id],
            "artifacts": report.artifacts,
            "sample": report.sample,
        }
    )


def synthetic(
    rows: int, seed: int, shift: float = 0.0, mix: list[float] | None = None
) -> pd.DataFrame:
    """Four numeric and two categorical columns; ``shift`` moves every numeric column by that
    many standard deviations and ``mix`` replaces the first categorical column's distribution."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, rows) * np.exp(0.5 * shift),
            "age": rng.normal(45, 12, rows) + 12 * shift,
            "score": rng.uniform(0, 1, rows) + 0.29 * shift,
            "visits": rng.poisson(5, rows) + 2.2 * shift,
            "region": rng.choice(
                ["north", "south", "east", "west"], rows, p=mix or [0.4, 0.3, 0.2, 0.1]
            ),
            "member": rng.choice([True, False], rows, p=[0.3, 0.7]),
        }
    )


def evidently_full_data(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    methods: dict[str, str | None] | None = None,
) -> dict[str, tuple[float, bool]]:
    """Evidently's own ValueDrift score and decision per column, on all rows."""
    kinds = {
        c: "num"
        if pd.api.types.is_numeric_dtype(reference[c]) and reference[c].dtype != bool
        else "cat"
        for c in columns
    }
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "num"],
        categorical_columns=[c for c in columns if kinds[c] == "cat"],
    )
    metrics = [ValueDrift(column=c, method=(methods or {}).get(c)) for c in columns]
    snapshot = Report(metrics, include_tests=True).run(
        current_data=EvidentlyDataset.from_pandas(current[columns], data_definition=definition),
        reference_data=EvidentlyDataset.from_pandas(reference[columns], data_definition=definition),
    )
    summary = snapshot.dict()
    scores = {m["config"]["column"]: float(m["value"]) for m in summary["metrics"]}
    drifted = {
        t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in summary["tests"]
    }
    return {c: (scores[c], drifted[c]) for c in columns}


# --------------------------------------------------------------------------- verdicts


def test_no_drift_gives_a_pass(tmp_path: Path) -> None:
    measurement = measure(drift(), synthetic(3000, 1), synthetic(3000, 2), tmp_path)
    assert measurement.error is None
    assert measurement.value is not None and measurement.value < THRESHOLDS.warn
    assert decide("drift", measurement.value, THRESHOLDS).verdict == "pass"


def test_strong_shift_drifts_most_columns(tmp_path: Path) -> None:
    current = synthetic(3000, 2, shift=1.0, mix=[0.1, 0.2, 0.3, 0.4])
    measurement = measure(drift(), synthetic(3000, 1), current, tmp_path)
    assert measurement.value is not None and measurement.value >= 5 / 6
    assert set(measurement.details["drifted_columns"]) >= {
        "income",
        "age",
        "score",
        "visits",
        "region",
    }
    assert decide("drift", measurement.value, THRESHOLDS).verdict == "fail"


def test_new_category_is_an_unseen_category(tmp_path: Path) -> None:
    current = synthetic(2000, 2)
    current.loc[:149, "region"] = "atlantis"
    measurement = measure(quality("unseen_categories"), synthetic(2000, 1), current, tmp_path)
    assert measurement.value == pytest.approx(150 / 4000)  # region and member, 2000 values each
    region = measurement.details["columns"]["region"]
    assert region["flagged"] == 150 and region["unseen_examples"] == ["atlantis"]


def test_values_outside_the_reference_range(tmp_path: Path) -> None:
    reference, current = synthetic(2000, 1), synthetic(2000, 2)
    current.loc[:9, "age"] = 1000.0
    current.loc[10:19, "age"] = np.nan
    expected = int(
        (
            (current["age"] > reference["age"].max()) | (current["age"] < reference["age"].min())
        ).sum()
    )
    measurement = measure(quality("out_of_range", columns=["age"]), reference, current, tmp_path)
    assert measurement.value == pytest.approx(expected / 1990)  # missing values are not counted
    assert measurement.details["columns"]["age"]["flagged"] == expected >= 10


def test_missing_values_share(tmp_path: Path) -> None:
    current = synthetic(1000, 2)
    current.loc[:99, "income"] = np.nan
    current.loc[:49, "region"] = None
    measurement = measure(quality("missing_share"), synthetic(1000, 1), current, tmp_path)
    assert measurement.value == pytest.approx(150 / 6000)
    assert measurement.details["columns"]["income"]["missing"] == 100


def test_type_change_is_an_error_for_drift_and_counted_by_schema(tmp_path: Path) -> None:
    reference, current = synthetic(500, 1), synthetic(500, 2)
    current["age"] = current["age"].round().astype(str)
    refused = measure(drift(), reference, current, tmp_path)
    assert refused.value is None and refused.error is not None
    assert "'age' is numeric (float64) in the reference but categorical (object)" in refused.error
    schema = measure(quality("schema"), reference, current.drop(columns=["visits"]), tmp_path)
    assert schema.value == 2.0
    assert schema.details["missing_in_current"] == ["visits"]
    assert set(schema.details["type_changed"]) == {"age"}


def test_missing_column_is_an_error_when_named_and_skipped_otherwise(tmp_path: Path) -> None:
    reference, current = synthetic(500, 1), synthetic(500, 2).drop(columns=["score"])
    refused = measure(drift(columns=["age", "score"]), reference, current, tmp_path)
    assert refused.value is None and refused.error
    assert "'score' missing from the current" in refused.error
    shared = measure(drift(), reference, current, tmp_path)
    assert shared.error is None
    assert shared.details["skipped_columns"] == {"score": "not in current data"}


def test_empty_current_is_an_error(tmp_path: Path) -> None:
    measurement = measure(drift(), synthetic(500, 1), synthetic(500, 2).iloc[:0], tmp_path)
    assert measurement.value is None and measurement.error and "empty" in measurement.error
    assert measurement.artifacts == []


def test_a_named_method_that_does_not_fit_the_column_is_an_error(tmp_path: Path) -> None:
    measurement = measure(drift(stattest="ks"), synthetic(500, 1), synthetic(500, 2), tmp_path)
    assert measurement.error
    assert "'ks' does not apply to categorical column 'region'" in measurement.error


# --------------------------------------------------------------------------- score direction


@pytest.mark.parametrize(
    ("method", "score", "threshold", "drifted"),
    [
        ("ks", 0.01, 0.05, True),
        ("ks", 0.05, 0.05, True),
        ("ks", 0.2, 0.05, False),
        ("chisquare", 0.01, 0.05, True),
        ("chisquare", 0.05, 0.05, False),
        ("z", 0.3, 0.05, False),
        ("wasserstein", 0.5, 0.1, True),
        ("wasserstein", 0.1, 0.1, True),
        ("wasserstein", 0.01, 0.1, False),
        ("psi", 0.3, 0.1, True),
        ("psi", 0.02, 0.1, False),
        ("jensenshannon", 0.2, 0.1, True),
        ("jensenshannon", 0.09, 0.1, False),
    ],
)
def test_p_values_drift_below_and_distances_at_or_above(
    method: str, score: float, threshold: float, drifted: bool
) -> None:
    assert drift_detected(method, score, threshold) is drifted


def test_direction_on_real_scores(tmp_path: Path) -> None:
    """A small shifted sample gives a tiny K-S p-value (drift); a large one a big distance."""
    only_age = drift(columns=["age"])
    small = measure(only_age, synthetic(800, 1), synthetic(800, 2, shift=0.5), tmp_path)
    small_age = small.details["columns"]["age"]
    assert (small_age["method"], small_age["score_kind"]) == ("ks", "p_value")
    assert small_age["score"] < 1e-6 and small_age["drifted"] is True
    calm = measure(only_age, synthetic(800, 1), synthetic(800, 2), tmp_path)
    assert calm.details["columns"]["age"]["score"] > 0.05 and calm.value == 0.0
    large = measure(only_age, synthetic(5000, 1), synthetic(5000, 2, shift=0.5), tmp_path)
    large_age = large.details["columns"]["age"]
    assert (large_age["method"], large_age["score_kind"]) == ("wasserstein", "distance")
    assert large_age["score"] > 0.4 and large_age["drifted"] is True


def test_prediction_scope_needs_thresholds_that_point_like_its_score(tmp_path: Path) -> None:
    wine = load_wine(as_frame=True).frame
    wine["label"] = wine["target"].map({0: "class_0", 1: "class_1", 2: "class_2"})
    reference, current = wine.iloc[::2], wine[wine["target"] == 0]
    named = drift(scope="prediction", stattest="chisquare")  # a p-value, higher-is-worse limits
    refused = measure(named, reference, current, tmp_path, prediction_column="label")
    assert refused.error and "thresholds.direction: lower_is_worse" in refused.error
    lower = named.model_copy(
        update={"thresholds": Thresholds(warn=0.1, fail=0.05, direction="lower_is_worse")}
    )
    measured = measure(lower, reference, current, tmp_path, prediction_column="label")
    assert measured.error is None and measured.value is not None and measured.value < 1e-6
    assert decide("drift", measured.value, lower.thresholds).verdict == "fail"


@pytest.mark.parametrize("rows", [60, 400, 3000])
@pytest.mark.parametrize("direction", ["higher_is_worse", "lower_is_worse"])
def test_auto_prediction_drift_fits_its_thresholds_at_every_size(
    tmp_path: Path, rows: int, direction: str
) -> None:
    """``stattest: auto`` on the prediction picks a distance for higher-is-worse thresholds and
    a p-value for lower-is-worse ones, small data or large, numeric or categorical."""
    rng = np.random.default_rng(rows)
    reference = pd.DataFrame(
        {"score": rng.normal(0, 1, rows), "label": rng.choice(["a", "b", "c"], rows)}
    )
    current = pd.DataFrame(
        {"score": rng.normal(0.2, 1, rows), "label": rng.choice(["a", "b", "c"], rows)}
    )
    limits = (
        Thresholds(warn=0.1, fail=0.2)
        if direction == "higher_is_worse"
        else Thresholds(warn=0.1, fail=0.05, direction="lower_is_worse")
    )
    control = drift(scope="prediction").model_copy(update={"thresholds": limits})
    for column in ("score", "label"):
        measured = measure(control, reference, current, tmp_path, prediction_column=column)
        assert measured.error is None, measured.error
        kind = measured.details["columns"][column]["score_kind"]
        assert kind == ("distance" if direction == "higher_is_worse" else "p_value")


# --------------------------------------------------------------------------- the data contract


def contract(**fields: Any) -> DataSpec:
    source = {"type": "file", "path": "unused.csv"}
    return DataSpec.model_validate({"reference": source, "current": source, **fields})


def test_target_and_prediction_are_never_features(tmp_path: Path) -> None:
    """Without declared features, drift takes the shared columns less target and prediction;
    with them, exactly the declared ones (an undeclared shifted column changes nothing)."""
    reference = synthetic(600, 1)
    current = synthetic(600, 2)
    for frame, flip in ((reference, 0), (current, 1)):
        frame["label"] = (np.arange(len(frame)) % 2 == flip).astype(int)
        frame["score"] = frame["label"] * (1.0 + flip)
    current["noise"] = reference["noise"] = np.arange(600.0)
    current["noise"] += 500.0
    spec = contract(target_column="label", prediction_column="score")
    inferred = measure(drift(), reference, current, tmp_path, contract=spec)
    assert "label" not in inferred.details["columns"] and "score" not in inferred.details["columns"]
    declared = contract(
        target_column="label", prediction_column="score", numerical=["age", "income"]
    )
    measured = measure(drift(), reference, current, tmp_path, contract=declared)
    assert list(measured.details["columns"]) == ["age", "income"]


def test_declared_kinds_are_the_contract(tmp_path: Path) -> None:
    reference = pd.DataFrame({"code": [1, 2, 3, 1] * 50, "amount": [1.0, 2.0, 3.0, 4.0] * 50})
    current = reference.copy()
    current.loc[0, "code"] = 9  # an unseen category although the column holds numbers
    as_categories = contract(categorical=["code"], numerical=["amount"])
    unseen = measure(
        quality("unseen_categories"), reference, current, tmp_path, contract=as_categories
    )
    assert unseen.error is None and unseen.details["columns"]["code"]["flagged"] == 1
    text = current.assign(amount="EUR " + current["amount"].astype(str))
    wrong = measure(quality("out_of_range"), reference, text, tmp_path, contract=as_categories)
    assert wrong.error and "'amount' is declared numerical in models.yaml" in wrong.error
    numeric_only = contract(numerical=["amount"])
    not_applicable = measure(
        quality("unseen_categories"), reference, current, tmp_path, contract=numeric_only
    )
    assert not_applicable.error is None and not_applicable.value is None
    assert (
        not_applicable.not_applicable and "no categorical feature" in not_applicable.not_applicable
    )
    typo = contract(numerical=["amount", "amuont"])
    missing = measure(drift(), reference, current, tmp_path, contract=typo)
    assert missing.error and "'amuont' (data.numerical)" in missing.error


# --------------------------------------------------------------------------- Evidently's numbers


@pytest.mark.parametrize(
    ("rows", "stattest", "expected"),
    [
        (600, "auto", {"income": "ks", "region": "chisquare", "member": "z", "visits": "ks"}),
        (
            3000,
            "auto",
            {"income": "wasserstein", "region": "jensenshannon", "member": "jensenshannon"},
        ),
        (3000, "psi", {"income": "psi", "region": "psi", "member": "psi"}),
        (3000, "jensenshannon", {"age": "jensenshannon", "visits": "jensenshannon"}),
    ],
)
def test_scores_are_evidentlys_on_full_data(
    tmp_path: Path, rows: int, stattest: str, expected: dict[str, str]
) -> None:
    reference, current = synthetic(rows, 1), synthetic(rows, 2, shift=0.1, mix=[0.3, 0.3, 0.2, 0.2])
    measurement = measure(
        drift(columns=list(expected), stattest=stattest), reference, current, tmp_path
    )
    methods = None if stattest == "auto" else dict.fromkeys(expected, stattest)
    theirs = evidently_full_data(reference, current, list(expected), methods)
    for column, method in expected.items():
        mine = measurement.details["columns"][column]
        assert mine["method"] == method
        assert mine["score"] == pytest.approx(theirs[column][0], rel=1e-9, abs=1e-12)
        assert mine["drifted"] is theirs[column][1]
        assert mine["report_score"] == pytest.approx(mine["score"], rel=1e-9, abs=1e-12)


def test_low_cardinality_numbers_are_tested_like_categories() -> None:
    assert choose_method("numeric", 500, distinct=4) == "chisquare"
    assert choose_method("numeric", 500, distinct=2) == "z"
    assert choose_method("numeric", 5000, distinct=5) == "jensenshannon"
    assert choose_method("numeric", 5000, distinct=6) == "wasserstein"


@pytest.mark.parametrize("name", ["normal", "lognormal", "ties", "outliers", "far"])
def test_wasserstein_sketch_is_within_its_bound(name: str) -> None:
    rng = np.random.default_rng(3)
    ref, cur = {
        "normal": (rng.normal(0, 1, 150_000), rng.normal(0.05, 1, 120_000)),
        "lognormal": (rng.lognormal(0, 2, 150_000), rng.lognormal(0.1, 2, 150_000)),
        "ties": (rng.integers(0, 40, 150_000) * 1.0, rng.integers(0, 42, 150_000) * 1.0),
        "outliers": (np.r_[rng.normal(0, 1, 149_990), np.full(10, 1e9)], rng.normal(0, 1, 150_000)),
        "far": (rng.normal(0, 1, 150_000), rng.normal(8, 3, 150_000)),
    }[name]
    value, bound = wasserstein_sketch(ref, cur, np.random.default_rng(0))
    exact = stats.wasserstein_distance(ref, cur)
    assert abs(value - exact) <= bound + 1e-9 * exact
    assert bound <= 0.003 * max(float(np.std(ref)), 1e-3)


# --------------------------------------------------------------------------- evidence


def test_artifacts_are_written_with_their_sha256(tmp_path: Path) -> None:
    measurement = measure(drift(), synthetic(800, 1), synthetic(800, 2, shift=1.0), tmp_path)
    assert [a.media_type for a in measurement.artifacts] == [
        "application/json",
        "application/vnd.evidently.snapshot+json",
    ]
    for artifact in measurement.artifacts:
        path = Path(artifact.path)
        assert path.parent == tmp_path and path.name == artifact.name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256
        assert path.stat().st_size == artifact.size_bytes > 0
    report = json.loads(Path(measurement.artifacts[0].path).read_text())
    assert {m["config"]["column"] for m in report["metrics"]} == set(measurement.details["columns"])
    for column in measurement.details["columns"].values():
        assert column["report_drifted"] is column["drifted"]
    snapshot = json.loads(gzip.decompress(Path(measurement.artifacts[1].path).read_bytes()))
    assert measurement.artifacts[1].name == "run-report.evidently.snapshot.json.gz"
    assert snapshot["widgets"] and snapshot["metric_results"]  # Evidently's full form
    assert not list(tmp_path.glob("*.html*")), "no HTML at run time: rendered on demand"
    json.dumps({"details": measurement.details, "sample": measurement.sample})  # plain JSON types


def test_stratified_sample_is_seeded_and_keeps_every_level() -> None:
    data = synthetic(50_000, 1)
    data.loc[:4, "region"] = "rare"
    sampling = Sampling(max_rows=2000, seed=9)
    columns = (list(data.columns), list(data.columns))
    first = draw_sample(data, data, sampling, columns, ["region"])
    again = draw_sample(data, data, sampling, columns, ["region"])
    other = draw_sample(data, data, Sampling(max_rows=2000, seed=10), columns, ["region"])
    assert first.info["strategy"] == "stratified" and first.info["stratify_on"] == "region"
    assert len(first.current) == 2000 and "rare" in set(first.current["region"])
    assert first.current.index.equals(again.current.index)
    assert not first.current.index.equals(other.current.index)
    shares = first.current["region"].value_counts(normalize=True)
    assert shares["north"] == pytest.approx((data["region"] == "north").mean(), abs=0.002)


# --------------------------------------------------------------------------- bundled data sets


def test_breast_cancer_split_and_shifted(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    order = np.random.default_rng(0).permutation(len(data))
    reference, current = data.iloc[order[:285]], data.iloc[order[285:]].copy()
    calm = measure(drift(), reference, current, tmp_path)
    assert calm.value is not None and calm.value < THRESHOLDS.warn
    current["mean radius"] += current["mean radius"].std()
    current["worst texture"] = current["worst texture"].mean() + 2 * (
        current["worst texture"] - current["worst texture"].mean()
    )
    shifted = measure(drift(), reference, current, tmp_path)
    assert {"mean radius", "worst texture"} <= set(shifted.details["drifted_columns"])
    assert shifted.details["columns"]["mean radius"]["method"] == "ks"


def test_diabetes_out_of_range(tmp_path: Path) -> None:
    data = load_diabetes(as_frame=True).frame
    reference, current = data.iloc[:300], data.iloc[300:].copy()
    current["bmi"] = current["bmi"] * 3
    control = quality("out_of_range", columns=["bmi", "bp"])
    measurement = measure(control, reference, current, tmp_path)
    assert measurement.details["columns"]["bmi"]["flagged"] > 0
    assert measurement.value is not None and measurement.value > 0.05


# --------------------------------------------------------------------------- large data


def test_sampled_verdict_equals_full_data_verdict_on_200k_rows(tmp_path: Path) -> None:
    """Sample of 5,000 rows for the report; decisions equal Evidently's on all 200,000 rows."""
    rows = 200_000
    reference, current = synthetic(rows, 1), synthetic(rows, 2)
    current["age"] += 0.3 * current["age"].std()
    current["score"] = current["score"].mean() + 1.6 * (current["score"] - current["score"].mean())
    current.loc[: rows // 10, "region"] = "new_region"
    measurement = measure(drift(), reference, current, tmp_path, max_rows=5000, seed=21)
    assert measurement.sample["sampled"] is True and measurement.sample["size"] == 5000
    assert measurement.sample["seed"] == 21 and measurement.sample["rows_total"] == rows
    columns = list(measurement.details["columns"])
    theirs = evidently_full_data(reference, current, columns)
    for column in columns:
        mine = measurement.details["columns"][column]
        assert mine["drifted"] is theirs[column][1], column
        assert abs(mine["score"] - theirs[column][0]) <= mine["error_bound"] + 1e-9, column
    assert set(measurement.details["drifted_columns"]) == {"age", "score", "region"}
    full_share = sum(d for _, d in theirs.values()) / len(theirs)
    assert measurement.value == full_share
    assert (
        decide("d", measurement.value, THRESHOLDS).verdict
        == decide("d", full_share, THRESHOLDS).verdict
    )
