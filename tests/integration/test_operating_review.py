"""The operating review: built from a seeded store, rendered, opened in headless Chromium.

Chromium at /usr/bin/chromium is driven by Playwright's Python package; without it the browser
test is skipped, unless PRODCONTROL_REQUIRE_CHROMIUM=1 makes its absence a failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from review_seed import FRAUD, at, config, seed_october

from prodcontrol.cli import app
from prodcontrol.control.reports.review_report import (
    OperatingReview,
    build,
    post_weekly_digest,
    render_html,
)
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

NOW = at(3, 9, month=11)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'evidence.db'}"
    seed_october(url)
    return url


@pytest.fixture(scope="module")
def review(seeded_url: str) -> OperatingReview:
    from prodcontrol.adapters.store.sql import SqlEvidenceStore

    return build(SqlEvidenceStore(seeded_url), config(), "2026-10", NOW)


def test_review_has_history_offenders_and_supported_recommendations(
    review: OperatingReview,
) -> None:
    assert [r.period.label for r in review.history] == [
        "2026-05",
        "2026-06",
        "2026-07",
        "2026-08",
        "2026-09",
        "2026-10",
    ]
    assert review.history[-2].overall.findings_opened == 0
    assert review.current.overall.findings_opened == 5
    # fraud-detector: 3 SLA breaches, 182 missed runs, 2 findings, 1 rollback
    assert review.offenders[0].name in {FRAUD, "chen"}
    subjects = [(r.subject, r.finding.split(" ")[0]) for r in review.recommendations]
    assert ("tier high", "median") in subjects  # 1 h to acknowledge > 30 min SLA
    assert ("tier medium", "median") in subjects  # 52 h to decide > 48 h SLA
    assert any(r.subject == "waivers" for r in review.recommendations)
    assert not any(r.subject.startswith("control ") for r in review.recommendations)


def test_rendered_page_opens_in_chromium_with_visible_plots(
    review: OperatingReview, tmp_path: Path, chromium_path: str
) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    page_file = tmp_path / "review.html"
    page_file.write_text(render_html(review), encoding="utf-8")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(page_file.as_uri())
            assert page.title().startswith("Operating review 2026-10")
            plots = page.locator("svg.plot")
            assert plots.count() == 4
            for i in range(4):
                plot = plots.nth(i)
                plot.scroll_into_view_if_needed()
                assert plot.is_visible()
                box = plot.bounding_box()
                assert box is not None and box["width"] >= 500 and box["height"] >= 200
            # the trend plot draws its three lines; the bar plots draw bars that have height
            trend = plots.first
            assert trend.locator('g[id*="-series-"]').count() == 3
            bars = page.locator('svg.plot g[id*="-bars-"] path')
            heights = [bars.nth(i).bounding_box()["height"] for i in range(bars.count())]  # type: ignore[index]
            assert max(heights) > 50
            assert page.locator('svg.plot g[id*="-sla-"]').count() >= 1
            assert page.locator("header").inner_text().startswith("prodcontrol")  # site layout
            page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)
            text = page.locator("#recommendations").inner_text()
            assert "median time to decide 2.2 d exceeds the 2.0 d SLA" in text
            assert "SLA breaches" in page.locator(".cards").inner_text()
        finally:
            browser.close()


def _cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> None:
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    settings = tmp_path / "prodcontrol.toml"
    settings.write_text(
        f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{EXAMPLES}"\n'
        f'database_url = "{url}"\n'
    )
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(settings))


def test_cli_writes_the_page_and_json(
    seeded_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli_env(monkeypatch, tmp_path, seeded_url)
    out = tmp_path / "review.html"
    args = ["report", "operating-review", "--period", "2026-10", "--out", str(out), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["period"] == "2026-10"
    assert data["current"]["overall"]["sla_breaches"] == 4
    assert data["current"]["overall"]["runs_on_schedule"] == 6
    assert out.read_text().count('<svg class="chart plot"') == 4
    only_high = CliRunner().invoke(
        app, ["report", "operating-review", "--period", "2026-10", "--tier", "high", "--json"]
    )
    assert only_high.exit_code == 0, only_high.output
    assert list(json.loads(only_high.stdout)["current"]["by_tier"]) == ["high"]
    bad = CliRunner().invoke(app, ["report", "operating-review", "--period", "October"])
    assert bad.exit_code != 0


def test_weekly_digest_goes_to_each_tier_risk_channel_once(seeded_url: str, tmp_path: Path) -> None:
    from prodcontrol.adapters.store.sql import SqlEvidenceStore
    from prodcontrol.testing import ManualClock

    clock = ManualClock(at(22, 9))
    rt = Runtime(
        Settings(state_dir=tmp_path, inventory_dir=EXAMPLES, database_url=seeded_url),
        clock,
        config=config(),
        store=SqlEvidenceStore(seeded_url, clock=clock),
    )
    queued = post_weekly_digest(rt)
    assert sorted((n.recipient, n.idempotency_key) for n in queued) == [
        ("#model-risk", "digest:low:2026-W43"),
        ("#model-risk", "digest:medium:2026-W43"),
        ("#model-risk-high", "digest:high:2026-W43"),
    ]
    high = next(n for n in queued if n.recipient == "#model-risk-high")
    # Oct 15 09:00 to Oct 22 09:00: fraud-detector's Oct 20 finding, its expiry and late ack
    assert "1 finding(s), 2 SLA breach(es)" in high.payload["text"]
    again = post_weekly_digest(rt)
    assert {n.id for n in again} == {n.id for n in queued}
    assert len(rt.store.list_notifications()) == 3


def test_served_page_in_the_web_app(seeded_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from prodcontrol.adapters.store.sql import SqlEvidenceStore
    from prodcontrol.testing import ManualClock
    from prodcontrol.web.app import create_app

    clock = ManualClock(NOW)
    settings = Settings(
        state_dir=tmp_path, inventory_dir=EXAMPLES, database_url=seeded_url, web_token="s3cret"
    )
    rt = Runtime(settings, clock, config=config(), store=SqlEvidenceStore(seeded_url, clock=clock))
    client = TestClient(create_app(rt))
    assert client.get("/review?period=2026-10").status_code in {401, 403}
    auth = {"Authorization": "Bearer s3cret"}
    page = client.get("/review?period=2026-10&tier=high", headers=auth)
    assert page.status_code == 200
    assert "Operating review 2026-10" in page.text
    assert page.text.count('<svg class="chart plot"') == 4
    assert '<link rel="stylesheet" href="/static/style.css">' in page.text  # the site's layout
    assert client.get("/review?period=2026-99", headers=auth).status_code == 400
