"""The pure parts of issue 7: framework view and gaps, retention refusal, chain start after a
purge, anchors, and the score plot."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.control.reports.charts import Point, score_plot, verdict_heatmap
from prodcontrol.errors import UsageError
from prodcontrol.evidence import ControlRun, Event, Verdict, entry_hash
from prodcontrol.evidence.anchor import Anchor, check_anchors
from prodcontrol.evidence.chain import GENESIS
from prodcontrol.evidence.frameworks import framework_view
from prodcontrol.evidence.retention import PURGE_KIND, chain_start, check_purge_allowed

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def run_with(*verdicts: tuple[str, str]) -> tuple[ControlRun, list[Verdict]]:
    run = ControlRun(
        id="r1",
        model="m",
        model_version="1",
        tier="high",
        trigger="cli",
        status="failed",
        started_at=NOW,
    )
    return run, [
        Verdict(
            id=f"v{i}",
            run_id="r1",
            created_at=NOW,
            control_id=control,
            kind="drift",
            verdict=result,
            direction="higher_is_worse",
            reason="",
        )
        for i, (control, result) in enumerate(verdicts)
    ]  # type: ignore[arg-type]


def test_framework_view_maps_clauses_to_runs_and_flags_gaps() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    catalog = load_config(default_catalog_dir(), examples).catalog
    rows = {
        r.clause: r
        for r in framework_view(
            catalog,
            "eu-ai-act",
            [run_with(("dataset-drift", "fail"), ("dq-missing-share", "pass"))],
        )
    }
    assert rows["art-72"].outcome == "fail" and rows["art-72"].runs == 1
    assert "dataset-drift" in rows["art-72"].controls
    assert rows["art-10"].verdicts == {"pass": 1} and not rows["art-10"].gap
    assert rows["art-73"].gap and rows["art-73"].outcome == "no evidence"
    with pytest.raises(UsageError, match="unknown framework"):
        framework_view(catalog, "sox", [])


def test_purges_inside_the_retention_period_are_refused() -> None:
    check_purge_allowed(NOW - timedelta(days=200), NOW, 183)
    with pytest.raises(UsageError, match="183 days"):
        check_purge_allowed(NOW - timedelta(days=100), NOW, 183)


def event(seq: int, prev: str, kind: str = "run.started", payload: dict | None = None) -> Event:  # type: ignore[type-arg]
    body = payload or {}
    digest = entry_hash(prev, seq, NOW, kind, "run", "r", None, body)
    return Event(
        seq=seq,
        at=NOW,
        kind=kind,
        subject_type="run",
        subject_id="r",
        payload=body,
        prev_hash=prev,
        hash=digest,
    )


def test_the_chain_starts_after_a_recorded_purge_only() -> None:
    first = event(11, "b" * 64)
    purge = event(20, "c" * 64, PURGE_KIND, {"through_seq": 10, "through_hash": "b" * 64})
    assert chain_start(first, [purge]) == (10, "b" * 64)
    assert chain_start(first, []) == (0, GENESIS)
    assert chain_start(event(1, GENESIS), [purge]) == (0, GENESIS)


def test_anchors_catch_a_rewritten_or_cut_log() -> None:
    anchor = Anchor(day=date(2026, 11, 24), seq=5, hash="a" * 64, written_at=NOW, where="x")
    assert check_anchors([anchor], {5: "a" * 64}, 0, 9) == []
    assert "differs from the anchor" in check_anchors([anchor], {5: "f" * 64}, 0, 9)[0]
    assert "removed from the end" in check_anchors([anchor], {}, 0, 4)[0]
    assert check_anchors([anchor], {}, 5, 9) == []  # purged with a record: nothing to check


def test_the_score_plot_draws_points_and_thresholds() -> None:
    points = [
        Point(NOW + timedelta(days=i), 0.1 * i, "fail" if i > 2 else "pass") for i in range(4)
    ]
    svg = score_plot("drift <share>", points, 0.2, 0.25, "share")
    assert svg.startswith('<svg class="chart score-plot"') and "<?xml" not in svg
    assert 'aria-label="drift &lt;share&gt; over time"' in svg
    assert 'id="drift-share-points-pass"' in svg and 'id="drift-share-points-fail"' in svg
    assert 'id="drift-share-threshold-warn"' in svg and 'id="drift-share-threshold-fail"' in svg
    assert "drift &lt;share&gt;" in svg  # text stays text, escaped
    assert svg == score_plot("drift <share>", points, 0.2, 0.25, "share")  # deterministic
    assert "no runs yet" in score_plot("empty", [], None, 1.0)


def test_the_heatmap_names_every_cell_and_marks_the_ones_not_run() -> None:
    svg = verdict_heatmap(
        "Latest verdicts", ["m-a", "m-b"], ["drift", "quality"], {("m-a", "drift"): "fail"}
    )
    assert svg.startswith('<svg class="chart heatmap"')
    assert 'id="latest-verdicts-cell-m-a-drift"' in svg and ">fail<" in svg
    assert svg.count('id="latest-verdicts-cell-') == 4  # the three not run are drawn as "-"


def test_not_applicable_is_its_own_outcome_never_a_gap_or_a_pass() -> None:
    """A control that does not apply shows as such in the framework view and in every page."""
    from prodcontrol.web.render import environment

    examples = Path(__file__).resolve().parents[2] / "examples"
    catalog = load_config(default_catalog_dir(), examples).catalog
    only = {
        r.clause: r
        for r in framework_view(
            catalog, "eu-ai-act", [run_with(("dq-unseen-categories", "not_applicable"))]
        )
    }
    assert only["art-15"].outcome == "not_applicable" and not only["art-15"].gap
    mixed = {
        r.clause: r
        for r in framework_view(
            catalog,
            "eu-ai-act",
            [run_with(("dq-unseen-categories", "not_applicable"), ("dq-out-of-range", "pass"))],
        )
    }
    assert mixed["art-15"].outcome == "pass"
    assert mixed["art-15"].verdicts == {"not_applicable": 1, "pass": 1}
    macros = environment().get_template("_macros.html").module
    badge = str(macros.badge("not_applicable"))  # type: ignore[attr-defined]
    assert ">not applicable<" in badge and "v-not_applicable" in badge
