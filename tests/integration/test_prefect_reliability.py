"""Reliability of the flows: a sweep killed with SIGKILL and started again, MLflow down mid-run.

The sweep runs in a subprocess against the session's Prefect test harness (its API URL is
passed on), building its runtime from ``prefect_world:env_runtime``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prefect_world import build_runtime, fleet_inventory, runtime_env, small_catalog

from prodcontrol.runtime import Runtime

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SLOT = "2026-11-02T08:00:00+00:00"
SWEEP = (
    "from prodcontrol.orchestration.flows import run_sweep\n"
    "from prodcontrol.orchestration.runtimes import RuntimeRef\n"
    "report = run_sweep(None, RuntimeRef(factory='prefect_world:env_runtime'), processes=0,"
    f" slot={SLOT!r})\n"
    "assert all(r.status != 'failed' for r in report.results), report\n"
)


def _finished(rt: Runtime, models: list[str]) -> list[str]:
    return [m for m in models if any(r.status != "running" for r in rt.store.list_runs(m))]


def _sweep(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SWEEP], env=env, cwd=ROOT)


@pytest.mark.slow
def test_sweep_killed_halfway_and_restarted_records_each_model_once(
    prefect_harness: str, tmp_path: Path
) -> None:
    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    models = fleet_inventory(inventory, {"low": 3, "medium": 3, "high": 4})
    state = tmp_path / "state"
    state.mkdir()
    drift = {"medium-model-1": 0.6, "high-model-0": 0.6, "high-model-3": 0.6}
    env = os.environ | runtime_env(state, catalog, inventory, drift, delay_s=0.5)
    env |= {
        "PREFECT_API_URL": prefect_harness,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    rt = build_runtime(state, catalog, inventory, drift=drift)

    first = _sweep(env)
    deadline = time.monotonic() + 120
    while len(_finished(rt, models)) < 2:
        assert first.poll() is None, "the sweep ended before it could be killed"
        assert time.monotonic() < deadline, "no model finished within 120 s"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    halfway = _finished(rt, models)
    assert 2 <= len(halfway) < len(models), halfway

    second = _sweep(env)
    assert second.wait(timeout=300) == 0

    for model in models:
        runs = rt.store.list_runs(model)
        assert len(runs) == 1, (model, runs)  # the killed attempt's run was adopted, not doubled
        [run] = runs
        assert run.status in ("succeeded", "failed")
        assert run.idempotency_key == f"sweep:{run.tier}:{SLOT}:{model}"
        assert len(rt.store.verdicts_for(run.id)) == 2
        findings = rt.store.list_findings(model=model)
        assert len(findings) == (1 if model in drift else 0), model
        gates = rt.store.list_gates(model=model)
        gated = model in drift and rt.config.model(model).tier != "low"
        assert len(gates) == (1 if gated else 0), model
    assert rt.store.list_actions() == []  # nobody decided: no action ran, none twice
    escalated = [e.finding_id for e in rt.store.list_escalations()]
    assert len(escalated) == len(set(escalated))  # one escalation per finding at most
    assert rt.store.verify().ok


@pytest.mark.slow
def test_mlflow_down_gives_error_verdicts_blocks_high_tier_and_moves_no_alias(
    prefect_harness: str, seeded_mlflow: str, mlflow_server: Any, tmp_path: Path
) -> None:
    from prodcontrol.adapters.mlflow import MlflowAdapter
    from prodcontrol.orchestration import runtimes
    from prodcontrol.orchestration.flows import run_control
    from prodcontrol.settings import Settings

    registry = MlflowAdapter(seeded_mlflow)
    before = registry.resolve_alias("fraud-detector", "champion").version
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=ROOT / "examples",
        mlflow_tracking_uri=seeded_mlflow,
    )
    rt = Runtime(settings)
    ref = runtimes.register(rt)
    mlflow_server.stop()
    try:
        result = run_control(
            model="fraud-detector", runtime=ref, wait_for_gates=False, retry_delay_s=0.01
        )
    finally:
        runtimes.unregister(ref)
        mlflow_server.start()

    assert result.exit_code == 3  # an outside system was unreachable
    assert result.model_version == "unresolved"
    errors = {c for c, v in result.verdicts.items() if v == "error"}
    assert "performance-vs-baseline" in errors  # it needs MLflow: error, never pass
    assert result.blocking >= len(errors)  # high tier is fail-closed: each error blocks
    assert result.gates and all(s == "pending" for s in result.gate_status.values())
    assert rt.store.list_actions(model="fraud-detector") == []
    assert MlflowAdapter(seeded_mlflow).resolve_alias("fraud-detector", "champion").version == (
        before
    )


@pytest.mark.slow
def test_long_wait_suspends_the_run_and_a_decision_brings_it_back(
    prefect_harness: str, tmp_path: Path
) -> None:
    """A deployed run suspends on its gate (its process exits: no worker held); once decided,
    the poller resumes it and the re-run finds its evidence and gate: nothing recorded twice."""
    from prefect.deployments import run_deployment
    from prefect.types.entrypoint import EntrypointType

    from prodcontrol.control.gates import decisions
    from prodcontrol.orchestration.flows import control_flow
    from prodcontrol.orchestration.gate_wait import resume_closed_gate_runs

    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    fleet_inventory(inventory, {"medium": 1})
    state = tmp_path / "state"
    state.mkdir()
    drift = {"medium-model-0": 0.6}
    rt = build_runtime(state, catalog, inventory, drift=drift)
    deployment_id = control_flow.to_deployment(
        name="suspend-test",
        parameters={
            "model": "medium-model-0",
            "runtime": {"factory": "prefect_world:env_runtime"},
            "short_wait_s": 0,
        },
        entrypoint_type=EntrypointType.MODULE_PATH,
    ).apply()
    flow_run = run_deployment(deployment_id, timeout=0)
    env = os.environ | runtime_env(state, catalog, inventory, drift, delay_s=0)
    env |= {
        "PREFECT_API_URL": prefect_harness,
        "PREFECT__FLOW_RUN_ID": str(flow_run.id),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }

    def execute() -> int:
        engine = [sys.executable, "-m", "prefect.engine"]
        return subprocess.run(engine, env=env, cwd=ROOT, timeout=300, check=False).returncode

    assert execute() == 0  # the process ends while the gate is pending
    [gate] = rt.store.list_gates(model="medium-model-0")
    assert gate.status == "pending" and gate.flow_run_id == str(flow_run.id)
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        assert client.read_flow_run(flow_run.id).state.is_paused()

        person = decisions.who_could_decide(rt, gate)[0]
        decisions.decide(
            rt, gate.id, person=person, decision="approve", channel="cli", reason="test reason"
        )
        assert resume_closed_gate_runs(rt) == [str(flow_run.id)]
        assert client.read_flow_run(flow_run.id).state.is_scheduled()

        assert execute() == 0  # started again: finds its run recorded and its gate decided
        final = client.read_flow_run(flow_run.id).state
        assert final.is_completed()
        # what the UI shows: the run's own outcome (a fail accepted at its gate), not a skip
        assert final.name == "Findings" and "medium-model-0 dataset-drift fail" in final.message
    assert len(rt.store.list_runs("medium-model-0")) == 1
    assert [g.id for g in rt.store.list_gates(model="medium-model-0")] == [gate.id]
