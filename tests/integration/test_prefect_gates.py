"""Flows waiting on gates: a decision written anywhere resumes the same flow run (DESIGN §4).

The flow runs in a background thread, pauses on its gate; the test decides through
``prodcontrol.control.gates.decisions`` (as the CLI, Slack or the web page would) and the run
resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gate_world import TickingClock, record_finding
from prefect_world import build_runtime, fleet_inventory, small_catalog

from identity_helpers import TokenBook
from prodcontrol.control.gates import decisions
from prodcontrol.runtime import Runtime

pytestmark = pytest.mark.usefixtures("prefect_harness")


def wait_until(check: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or check}")


def flow_state(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id).state


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from prodcontrol.orchestration import runtimes

    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    fleet_inventory(inventory, {"medium": 2, "high": 1})
    state = tmp_path / "state"
    state.mkdir()
    clock = TickingClock()
    rt = build_runtime(
        state,
        catalog,
        inventory,
        drift={"high-model-0": 0.6, "medium-model-0": 0.6},
        clock=clock,
    )
    ref = runtimes.register(rt)
    pool = ThreadPoolExecutor(max_workers=1)
    yield {"rt": rt, "ref": ref, "clock": clock, "pool": pool}
    pool.shutdown(wait=False, cancel_futures=True)
    runtimes.unregister(ref)


def start_waiting(world: dict[str, Any], model: str) -> tuple[Future[Any], str]:
    """Start the model's control flow in the background; return it once paused on its gate."""
    from prodcontrol.orchestration.flows import run_control

    rt: Runtime = world["rt"]
    running = world["pool"].submit(run_control, model=model, runtime=world["ref"])

    def paused_gate() -> Any:
        if running.done():
            running.result()  # raises if the flow failed before pausing
        gates = rt.store.list_gates(model=model)
        if gates and gates[0].flow_run_id and flow_state(gates[0].flow_run_id).is_paused():
            return gates[0]
        return None

    gate = wait_until(paused_gate, what=f"{model}'s flow to pause on its gate")
    return running, gate.id


def test_two_person_gate_decided_outside_resumes_the_paused_run(world: dict[str, Any]) -> None:
    rt: Runtime = world["rt"]
    running, gate_id = start_waiting(world, "high-model-0")
    gate = rt.store.get_gate(gate_id)
    assert gate.required_approvals == 2

    first, second = decisions.who_could_decide(rt, gate)[:2]  # the rules pick who may
    decisions.decide(rt, gate_id, person=first, decision="approve", channel="cli", reason="ok")
    time.sleep(1.5)  # one approval of two: the run stays paused
    assert flow_state(str(gate.flow_run_id)).is_paused()

    decisions.decide(rt, gate_id, person=second, decision="approve", channel="slack", reason="ok")
    result = running.result(timeout=60)
    assert result.gate_status == {gate_id: "approved"}
    assert wait_until(lambda: flow_state(str(gate.flow_run_id)).is_completed())
    channels = sorted(d.channel for d in rt.store.decisions_for(gate_id))
    assert channels == ["cli", "slack"]


def test_decision_typed_into_the_prefect_form_goes_through_the_rules(
    world: dict[str, Any],
) -> None:
    from prefect.flow_runs import resume_flow_run

    rt: Runtime = world["rt"]
    running, gate_id = start_waiting(world, "medium-model-0")
    gate = rt.store.get_gate(gate_id)
    person = decisions.who_could_decide(rt, gate, "reject")[0]
    tokens = TokenBook(rt)

    # a name typed into the form is not a credential: the run keeps waiting, the try is recorded
    resume_flow_run(
        str(gate.flow_run_id),  # type: ignore[arg-type]
        run_input={"gate_id": gate_id, "token": person, "decision": "reject", "reason": "drift"},
    )
    wait_until(
        lambda: any(e.payload.get("channel") == "prefect_form" for e in rt.store.events()),
        what="the refused form answer recorded",
    )
    assert rt.store.decisions_for(gate_id) == []
    wait_until(lambda: flow_state(str(gate.flow_run_id)).is_paused(), what="paused again")
    resume_flow_run(
        str(gate.flow_run_id),  # type: ignore[arg-type]
        run_input={
            "gate_id": gate_id,
            "token": tokens.token(person),
            "decision": "reject",
            "reason": "drift",
        },
    )
    result = running.result(timeout=60)
    assert result.gate_status == {gate_id: "rejected"}
    [decision] = rt.store.decisions_for(gate_id)
    assert (decision.person, decision.channel, decision.decision) == (person, "web", "reject")
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        stored = client.filter_flow_run_input(UUID(str(gate.flow_run_id)), "", 100, set())
    assert stored and not any(tokens.token(person) in i.value for i in stored)  # answer deleted


def test_gate_timeout_expires_the_gate_once_and_resumes_the_run(world: dict[str, Any]) -> None:
    from prodcontrol.orchestration.flows import escalation_ticker_flow

    rt: Runtime = world["rt"]
    running, gate_id = start_waiting(world, "high-model-0")
    timeout_action = rt.config.catalog.tiers["high"].gate.on_timeout
    world["clock"].advance(timedelta(hours=9))  # past the high tier's gate timeout

    report = escalation_ticker_flow(runtime=world["ref"])
    result = running.result(timeout=60)
    assert result.gate_status == {gate_id: "expired"}
    assert report.expired_gates in ([gate_id], [])  # the run's own watcher may expire it first
    applied = [a for a in rt.store.list_actions(model="high-model-0") if a.gate_id == gate_id]
    assert [a.action for a in applied] == [timeout_action]  # applied exactly once
    assert [a.status for a in applied] == ["applied"]


def test_poller_and_hook_resume_a_run_paused_on_a_closed_gate(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A suspended run has no process to watch its gate: the ticker's poller resumes it."""
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.states import Paused

    from prodcontrol.control.escalation.escalation import gate_closed_subscriber
    from prodcontrol.orchestration.gate_wait import (
        pause_key,
        resume_closed_gate_runs,
        resume_waiting_run,
    )

    rt: Runtime = world["rt"]
    # no Prefect subscribers on the gates' domain events: resume by hand below
    monkeypatch.setattr(rt, "subscribers", [gate_closed_subscriber(rt)])

    @flow(name="stand-in-for-a-suspended-run")
    def idle() -> None:
        return None

    # two models: a second run of the same version would join the first one's pending gate
    findings = [record_finding(rt, model, "2") for model in ("medium-model-0", "medium-model-1")]
    with get_client(sync_client=True) as client:
        runs = [client.create_flow_run(idle) for _ in range(2)]
        gates = [
            decisions.open_finding_gate(rt, f, "medium", flow_run_id=str(run.id))
            for run, f in zip(runs, findings, strict=True)
        ]
        for run, gate in zip(runs, gates, strict=True):
            paused = Paused(pause_key=pause_key(gate, 0), timeout_seconds=600)
            client.set_flow_run_state(run.id, paused, force=True)

    assert resume_closed_gate_runs(rt) == []  # both gates still pending
    closed = [
        decisions.decide(
            rt,
            g.id,
            person=decisions.who_could_decide(rt, g)[0],
            decision="approve",
            channel="cli",
            reason="test reason",
        )
        for g in gates
    ]
    assert resume_waiting_run(rt, closed[0]) is True
    assert resume_closed_gate_runs(rt) == [str(runs[1].id)]
    for run in runs:
        assert not flow_state(str(run.id)).is_paused()
    assert resume_waiting_run(rt, closed[0]) is False  # nothing waits on it any more
