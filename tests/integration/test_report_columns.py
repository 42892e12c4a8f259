"""``sampling.columns: flagged``: the run's one report shows a drift control's drifted columns
and the ``closest`` others one by one; every column's full-data score and decision, the verdict
and the segments stay exactly what ``columns: all`` gives (real Evidently, data built here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from prodcontrol.adapters.evidently import EvidentlyChecker, closeness
from prodcontrol.catalog.schema import DriftControl, Sampling, Thresholds
from prodcontrol.ports import Dataset, Measurement

CHECKER = EvidentlyChecker()
COLUMNS = [f"x{i}" for i in range(10)]


def frames(rows: int = 4000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten numeric features and a region; x3 and x7 shifted hard, x5 and x1 a little."""
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({c: rng.normal(0, 1, rows) for c in COLUMNS})
    current = pd.DataFrame({c: rng.normal(0, 1, rows) for c in COLUMNS})
    current["x3"] += 2.0
    current["x7"] *= 3.0
    current["x5"] += 0.06
    current["x1"] += 0.04
    for frame in (reference, current):
        frame["region"] = rng.choice(["north", "south"], rows)
    return reference, current


def control(**params: Any) -> DriftControl:
    return DriftControl(
        id="feature-drift",
        title="Feature drift",
        severity="high",
        kind="drift",
        thresholds=Thresholds(warn=0.1, fail=0.3),
        clauses=["c"],
        params={"columns": COLUMNS, **params},
    )


def run(drift: DriftControl, sampling: Sampling, out: Path) -> tuple[Measurement, dict[str, Any]]:
    reference, current = frames()
    ref = Dataset(frame=reference, rows=len(reference), columns=list(reference), source="memory")
    cur = Dataset(frame=current, rows=len(current), columns=list(current), source="memory")
    measured = CHECKER.measure(
        drift, ref, cur, sampling=sampling, prediction_column=None, out_dir=str(out), contract=None
    )
    report = CHECKER.render_report(
        {drift.id: measured}, ref, cur, sampling=sampling, out_dir=str(out), title="t"
    )
    assert report.error is None, report.error
    snapshot = next(a for a in report.artifacts if a.name == "run-report.evidently.json")
    return measured, json.loads(Path(snapshot.path).read_text())


def reported_columns(snapshot: dict[str, Any]) -> set[str]:
    return {
        str(m["config"]["column"])
        for m in snapshot["metrics"]
        if str(m["config"].get("type", "")).endswith("ValueDrift")
    }


def test_flagged_shows_the_drifted_and_the_closest_columns(tmp_path: Path) -> None:
    everything, all_report = run(control(), Sampling(max_rows=50_000), tmp_path / "all")
    flagged, flagged_report = run(
        control(), Sampling(max_rows=50_000, columns="flagged", closest=2), tmp_path / "flagged"
    )
    assert reported_columns(all_report) == set(COLUMNS)
    drifted = set(everything.details["drifted_columns"])
    assert {"x3", "x7"} <= drifted
    # the two closest others, by the full-data score against the threshold
    scores = everything.details["columns"]
    others = sorted(
        (c for c in COLUMNS if c not in drifted),
        key=lambda c: scores[c]["score"] / scores[c]["threshold"],
        reverse=True,
    )
    shown = drifted | set(others[:2])
    assert reported_columns(flagged_report) == shown
    assert flagged.details["report_columns"]["shown"] == [c for c in COLUMNS if c in shown]
    # the verdict's number and every column's full-data numbers are unchanged
    assert flagged.value == everything.value
    assert flagged.details["columns"] == everything.details["columns"]
    assert flagged.details["drifted_columns"] == everything.details["drifted_columns"]


def test_flagged_segments_still_score_every_column(tmp_path: Path) -> None:
    segmented = control(segments=["region"])
    everything, _ = run(segmented, Sampling(max_rows=50_000), tmp_path / "all")
    flagged, _ = run(
        segmented, Sampling(max_rows=50_000, columns="flagged", closest=0), tmp_path / "f"
    )
    assert flagged.details["report_columns"]["shown"] == ["x3", "x7"]
    segments = {k: v for k, v in everything.details.items() if "segment" in k}
    assert segments and segments == {k: v for k, v in flagged.details.items() if "segment" in k}
    assert flagged.value == everything.value


def test_closeness_points_the_same_way_for_p_values_and_distances() -> None:
    from prodcontrol.adapters.evidently import ColumnDrift

    def column(method: str, score: float, threshold: float) -> ColumnDrift:
        return ColumnDrift("c", "numeric", method, score, threshold, 10, 10)

    assert closeness(column("ks", 0.05, 0.05)) == 1.0 == closeness(column("wasserstein", 0.1, 0.1))
    assert closeness(column("ks", 0.5, 0.05)) < closeness(column("ks", 0.06, 0.05)) < 1
    assert closeness(column("wasserstein", 0.02, 0.1)) < closeness(column("wasserstein", 0.09, 0.1))
    assert closeness(column("ks", 0.0, 0.05)) == float("inf")
