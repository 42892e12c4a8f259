"""The web evidence browser in headless Chromium (Debian's, driven by Playwright; no download).

uvicorn serves ``create_app`` on a free loopback port over a store seeded through its API.
Screenshots go to ``test-artifacts/`` (gitignored) for the closing note and for CI artifacts.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import sync_playwright
from pydantic import SecretStr

from evidence_seed import EXAMPLES, Seeded, seeded_store
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.web.app import create_app
from prodcontrol.web.server import server_config

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HEADER = "X-Forwarded-User"
TOKEN = "web-test-token"


@dataclass
class Site:
    url: str
    rt: Runtime
    seeded: Seeded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    state = tmp_path_factory.mktemp("web-state")
    url = f"sqlite:///{state / 'evidence.db'}"
    store, config, clock, seeded = seeded_store(url, state)
    settings = Settings(
        state_dir=state,
        inventory_dir=EXAMPLES,
        database_url=url,
        web_auth_header=HEADER,
        web_trusted_proxies=["127.0.0.1/32"],  # the browser comes from 127.0.0.1, as a proxy
        web_token=SecretStr(TOKEN),
    )
    rt = Runtime(settings, clock=clock, store=store, config=config)
    port = free_port()
    server = uvicorn.Server(server_config(create_app(rt), "127.0.0.1", port, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Site(f"http://127.0.0.1:{port}", rt, seeded)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[object]:
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def page_as(browser: object, person: str | None = None, token: str | None = None) -> object:
    headers = {HEADER: person} if person else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    context = browser.new_context(  # type: ignore[attr-defined]
        extra_http_headers=headers, viewport={"width": 1400, "height": 1000}
    )
    return context.new_page()


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)  # type: ignore[attr-defined]


def holders(site: Site) -> tuple[str, str]:
    """Someone who may decide the pending fraud gate, and an owner who may not."""
    from prodcontrol.control.gates.decisions import who_could_decide

    gate = site.rt.store.get_gate(site.seeded.pending_gate)
    could = set(who_could_decide(site.rt, gate))
    owners = set(site.rt.config.model("fraud-detector").owners.assigned().values())
    return sorted(could)[0], sorted(owners - could)[0]


def test_the_fleet_page_lists_the_example_models(site: Site, browser: object) -> None:
    page = page_as(browser, token=TOKEN)
    response = page.goto(site.url + "/")  # type: ignore[attr-defined]
    assert response.status == 200
    shown = page.locator("tr.model-row").evaluate_all(  # type: ignore[attr-defined]
        "rows => rows.map(r => r.dataset.model)"
    )
    assert set(shown) == set(site.rt.config.inventory.models)
    fraud = page.locator('tr[data-model="fraud-detector"]')  # type: ignore[attr-defined]
    assert "fail" in fraud.inner_text() and "Chen Wei" in fraud.inner_text()
    heatmap = page.locator("#heatmap svg.heatmap")  # type: ignore[attr-defined]
    assert heatmap.bounding_box()["width"] > 300
    latest = {v.control_id: v.verdict for v in site.rt.store.latest_verdicts("fraud-detector")}
    control, verdict = next(iter(latest.items()))
    cell = heatmap.locator(f'g[id$="-cell-fraud-detector-{control}"]')
    assert cell.text_content().strip() == verdict
    shot(page, "web-fleet.png")


def test_the_model_page_shows_the_score_plot(site: Site, browser: object) -> None:
    holder, _ = holders(site)
    page = page_as(browser, person=holder)
    page.goto(site.url + "/models/fraud-detector")  # type: ignore[attr-defined]
    plots = page.locator("svg.score-plot")  # type: ignore[attr-defined]
    controls = site.rt.config.controls_for(site.rt.config.model("fraud-detector"))
    assert plots.count() == len(controls)
    drift = page.locator('svg.score-plot[aria-label^="dataset-drift"]')  # type: ignore[attr-defined]
    assert drift.locator('g[id$="-points-fail"] use').count() >= 1
    assert drift.locator('g[id*="-points-"] use').count() == 5  # one mark per run
    assert drift.locator('g[id$="-threshold-fail"]').count() == 1
    assert drift.bounding_box()["width"] > 300  # drawn, not just present
    assert "escalation acknowledged" in page.locator("#timeline").inner_text()  # type: ignore[attr-defined]
    shot(page, "web-model.png")


def test_an_unauthenticated_request_is_refused(site: Site, browser: object) -> None:
    page = page_as(browser)
    response = page.goto(site.url + "/")  # type: ignore[attr-defined]
    assert response.status == 401
    assert "authentication required" in page.content()  # type: ignore[attr-defined]
    assert page.goto(site.url + "/models/fraud-detector").status == 401  # type: ignore[attr-defined]
    assert page.goto(site.url + "/pack.zip").status == 401  # type: ignore[attr-defined]
    assert page.goto(site.url + "/?token=wrong").status == 401  # type: ignore[attr-defined]
    assert page.goto(site.url + f"/?token={TOKEN}").status == 401  # type: ignore[attr-defined]
    assert page.goto(site.url + "/healthz").status == 200  # type: ignore[attr-defined]


def test_a_person_without_the_right_sees_no_decision_button(site: Site, browser: object) -> None:
    _, outsider = holders(site)
    page = page_as(browser, person=outsider)
    page.goto(site.url + "/models/fraud-detector")  # type: ignore[attr-defined]
    gate = page.locator(f'tr[data-gate="{site.seeded.pending_gate}"]')  # type: ignore[attr-defined]
    assert gate.count() == 1 and gate.locator("button.decision-button").count() == 0
    assert "needs escalation_outcome" in gate.inner_text()
    shot(page, "web-model-no-right.png")
    reader = page_as(browser, token=TOKEN)  # the shared token is read-only
    reader.goto(site.url + "/models/fraud-detector")  # type: ignore[attr-defined]
    assert reader.locator("button.decision-button").count() == 0  # type: ignore[attr-defined]


def test_a_holder_decides_from_the_page(site: Site, browser: object) -> None:
    holder, _ = holders(site)
    page = page_as(browser, person=holder)
    page.goto(site.url + "/models/fraud-detector")  # type: ignore[attr-defined]
    gate = page.locator(f'tr[data-gate="{site.seeded.pending_gate}"]')  # type: ignore[attr-defined]
    gate.locator('input[name="reason"]').fill("drift explained by the new merchant mix")
    gate.locator('button[value="approve"]').click()
    page.wait_for_url("**/models/fraud-detector?message=*")  # type: ignore[attr-defined]
    assert f"{holder} approved" in page.locator("#message").inner_text()  # type: ignore[attr-defined]
    [decision] = site.rt.store.decisions_for(site.seeded.pending_gate)
    assert (decision.person, decision.channel) == (holder, "web")
    shot(page, "web-model-decided.png")


def test_the_run_report_is_embedded_and_the_pack_downloads(site: Site, browser: object) -> None:
    page = page_as(browser, token=TOKEN)
    run_id = site.seeded.runs["fraud-detector"][-1]
    page.goto(f"{site.url}/runs/{run_id}")  # type: ignore[attr-defined]
    frame = page.frame_locator("iframe.report").first  # type: ignore[attr-defined]
    assert "Evidently data drift report" in frame.locator("h1").inner_text()
    shot(page, "web-run.png")
    page.goto(site.url + "/models/fraud-detector")  # type: ignore[attr-defined]
    with page.expect_download() as info:  # type: ignore[attr-defined]
        page.click("text=download evidence pack")  # type: ignore[attr-defined]
    target = ARTIFACTS / "web-pack-fraud-detector.zip"
    info.value.save_as(str(target))
    from prodcontrol.evidence.pack import verify_pack

    assert verify_pack(target.read_bytes()).ok
