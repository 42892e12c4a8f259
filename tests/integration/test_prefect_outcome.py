"""What a team sees in Prefect's own UI: a named final state that tells the outcome, a table
artifact per control run, and a decision made where no Prefect API is reachable says so."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from prefect_world import build_runtime, fleet_inventory, small_catalog

pytestmark = pytest.mark.usefixtures("prefect_harness")
SLOT = "2026-11-02T08:00:00+00:00"


@pytest.fixture
def world(tmp_path: Path) -> Any:
    from prodcontrol.orchestration import runtimes

    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    fleet_inventory(inventory, {"low": 1, "high": 1})
    state = tmp_path / "state"
    state.mkdir()
    rt = build_runtime(state, catalog, inventory, drift={"high-model-0": 0.6})
    ref = runtimes.register(rt)
    yield rt, ref
    runtimes.unregister(ref)


def _sweep_state(ref: Any, tier: str | None, slot: str = SLOT) -> Any:
    from prodcontrol.orchestration.flows import sweep_flow, thread_runner

    configured = sweep_flow.with_options(task_runner=thread_runner(0))
    return configured(tier=tier, runtime=ref, processes=0, slot=slot, return_state=True)


def _api_state(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


def _events(name: str, resource_id: str) -> list[dict[str, Any]]:
    """The Prefect events ``name`` about ``resource_id``, waiting for them to be delivered."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + 60
    while True:
        with get_client(sync_client=True) as client:
            answer = client.request(
                "POST", "/events/filter", json={"filter": {"event": {"name": [name]}}, "limit": 50}
            )
        found = [
            e
            for e in answer.json().get("events", [])
            if e["resource"]["prefect.resource.id"] == resource_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_blocking_finding_fails_the_run_and_names_the_control(world: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from prodcontrol.orchestration.outcome import report_of

    rt, ref = world
    state = _sweep_state(ref, None)
    report = report_of(state)
    assert state.is_failed() and state.name == "Blocked"
    [gate] = report.results[[r.model for r in report.results].index("high-model-0")].gates
    assert "high-model-0 dataset-drift fail" in state.message
    assert f"gate {gate} pending" in state.message
    shown = _api_state(report.flow_run_id)  # what the Prefect UI shows
    assert shown.is_failed() and shown.name == "Blocked" and shown.message == state.message

    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["controls-high-model-0"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[report.flow_run_id]),
            ),
        )
    rows = {row["control"]: row for row in json.loads(artifact.data)}
    assert rows["dataset-drift"]["verdict"] == "fail"
    assert rows["dataset-drift"]["value"] == pytest.approx(0.6)
    assert "fail >=" in rows["dataset-drift"]["threshold"]
    run_id = report.results[[r.model for r in report.results].index("high-model-0")].run_id
    assert rows["dataset-drift"]["evidence"].endswith(f"/runs/{run_id}")

    [opened] = _events("prodcontrol.gate.opened", f"prodcontrol.gate.{gate}")
    assert opened["payload"]["model"] == "high-model-0"
    assert opened["payload"]["status"] == "pending"
    [finding] = [f for f in rt.store.list_findings(model="high-model-0") if f.run_id == run_id]
    [told] = _events("prodcontrol.finding.opened", f"prodcontrol.finding.{finding.id}")
    assert told["payload"]["control"] == "dataset-drift" and told["payload"]["blocking"]

    again = _sweep_state(ref, None)  # the same schedule slot, run again
    assert again.name == "Skipped" and again.is_completed()
    assert f"already recorded in slot {SLOT}" in again.message
    assert len(rt.store.list_gates(model="high-model-0")) == 1


def test_a_clean_tier_passes_and_the_cli_still_gets_its_report(world: Any) -> None:
    from prodcontrol.orchestration.flows import run_sweep

    _rt, ref = world
    state = _sweep_state(ref, "low")
    assert state.is_completed() and state.name == "Passed"
    assert "every control passed" in state.message
    report = run_sweep("high", ref, processes=0, slot=SLOT)  # Failed(Blocked): still a report
    assert [r.exit_code for r in report.results] == [1]


def test_a_decision_without_a_prefect_api_says_the_ticker_resumes_the_run(
    world: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from prodcontrol.control.gates import decisions

    rt, ref = world
    report = report_of_blocked(ref)
    [gate_id] = next(r for r in report.results if r.model == "high-model-0").gates
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    people = decisions.who_could_decide(rt, rt.store.get_gate(gate_id))[:2]
    with caplog.at_level(logging.WARNING, logger="prodcontrol.orchestration"):
        for person in people:
            decisions.decide(
                rt, gate_id, person=person, decision="approve", channel="cli", reason="ok"
            )
    warned = [r.getMessage() for r in caplog.records if "escalation ticker" in r.getMessage()]
    assert warned and gate_id in warned[-1] and report.flow_run_id in warned[-1]
    # the harness's API is still in Prefect's settings: the decision is an event for Automations
    [decided] = _events("prodcontrol.gate.decided", f"prodcontrol.gate.{gate_id}")
    assert decided["payload"]["status"] == "approved"
    # the resume is left to the ticker: the gate's domain event waits for it, the emit is done
    [event] = rt.store.list_domain_events(gate_id=gate_id)
    assert event.status == "pending" and event.result["prefect_event"]["done"]
    assert event.result["prefect_resume"]["note"] == "no Prefect API in this process"


def report_of_blocked(ref: Any) -> Any:
    from prodcontrol.orchestration.outcome import report_of

    return report_of(_sweep_state(ref, "high"))
