"""``prodcontrol demo --history DAYS``: the real loop over past days on a simulated clock.

A local MLflow store is seeded as the demo seeds it; the history runs the example models' tier
controls once a day through the close-run use case, ticks the escalations, lets owners
acknowledge and right holders decide; the charts and the operating review then show one point
per day and a drift that rises as the current data comes in.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from prodcontrol.control.reports.charts import Point, score_plot
from prodcontrol.control.reports.demo_history import history_runtime, last_morning, simulate
from prodcontrol.control.reports.review_report import build, render_html
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DAYS = 4
NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)  # before 06:00: the edge of "the last day"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    from prodcontrol.testing.seed import seed_mlflow

    state = tmp_path_factory.mktemp("history")
    settings = Settings(
        state_dir=state,
        inventory_dir=ROOT / "examples",
        mlflow_tracking_uri=f"sqlite:///{state / 'mlflow.db'}",
        database_url=f"sqlite:///{state / 'evidence.db'}",
    )
    rt = Runtime(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seed_mlflow(settings.resolved_tracking_uri, rt.config, log_datasets=False)
        past, clock, end = history_runtime(rt, DAYS, now=NOW)
        report = simulate(past, DAYS, clock=clock, end=end)
    assert report.runs == DAYS * 3 and report.decisions >= 1
    # right holders decided every gate in time: no timeout action moved an alias
    assert report.expired == 0
    assert [a.action for a in past.store.list_actions() if a.action != "accept"] == []
    assert past.registry.resolve_alias("fraud-detector", "champion").version == "2"  # type: ignore[attr-defined]
    return past


def test_one_scheduled_run_per_model_and_day_and_none_after_now(history: Runtime) -> None:
    runs = history.store.list_runs(model="fraud-detector")
    days = sorted({r.started_at.date() for r in runs})
    assert len(runs) == DAYS and len(days) == DAYS
    assert days[-1] == last_morning(NOW).date() and last_morning(NOW) <= NOW - timedelta(hours=25)
    assert max(r.started_at for r in history.store.list_runs()) < NOW
    assert all(r.trigger == "schedule" for r in runs)


def test_drift_rises_day_after_day_and_the_plot_shows_every_day(history: Runtime) -> None:
    runs = sorted(history.store.list_runs(model="fraud-detector"), key=lambda r: r.started_at)
    drift = [
        next(v for v in history.store.verdicts_for(r.id) if v.control_id == "dataset-drift")
        for r in runs
    ]
    values = [v.value or 0.0 for v in drift]
    assert values[0] < values[-1] and values == sorted(values)
    assert drift[0].verdict == "pass" and drift[-1].verdict == "fail"
    svg = score_plot(
        "dataset-drift: drift",
        [Point(r.started_at, v.value, v.verdict) for r, v in zip(runs, drift, strict=True)],
        drift[0].warn,
        drift[0].fail,
    )
    assert 'id="dataset-drift-points-pass"' in svg and 'id="dataset-drift-points-fail"' in svg


def test_people_acted_and_the_operating_review_counts_it(history: Runtime) -> None:
    gates = history.store.list_gates(model="fraud-detector")
    approved = [g for g in gates if g.status == "approved"]
    assert approved, [g.status for g in gates]
    decisions = [d for g in approved for d in history.store.decisions_for(g.id)]
    assert len({d.person for d in decisions if d.gate_id == approved[0].id}) == 2  # two people
    assert any(e.model == "fraud-detector" for e in history.store.list_escalations())
    review = build(history.store, history.config, "2026-11", NOW)
    assert review.current.overall.findings_opened >= DAYS
    assert review.current.overall.time_to_decide.median_s is not None
    page = render_html(review)
    assert page.count('<svg class="chart plot"') == 4 and "<style>" in page
