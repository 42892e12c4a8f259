"""A tier's sweep split over two process workers of a work pool, on a real ``prefect server``.

The deployment says ``shards=2``; its flow run (on one worker) starts the second shard's flow
run, which the other worker picks up (each worker runs one flow run at a time). Every model gets
exactly one control run, half recorded by each flow run; the first flow run reports the whole
tier; the same slot run again records nothing and ends ``Skipped``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect_world import build_runtime, fleet_inventory, runtime_env, small_catalog

from prodcontrol.testing.prefect_server import PrefectServer, clean_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
POOL = "pc-shards"
SLOT = "2026-11-02T08:00:00+00:00"
DEPLOY_AND_RUN = f"""
import json, sys
from prefect.deployments import run_deployment
from prefect.types.entrypoint import EntrypointType
from prodcontrol.orchestration.deploy import ensure_work_pool
from prodcontrol.orchestration.flows import sweep_flow

ensure_work_pool({POOL!r})
deployment = sweep_flow.to_deployment(
    name="high-split",
    entrypoint_type=EntrypointType.MODULE_PATH,
    parameters={{"tier": "high", "runtime": {{"factory": "prefect_world:env_runtime"}},
                "slot": {SLOT!r}, "shards": 2, "processes": 0}},
)
deployment_id = deployment.apply(work_pool_name={POOL!r})
for attempt in range(2):
    run = run_deployment(deployment_id, timeout=600, as_subflow=False)
    print(json.dumps({{"id": str(run.id), "state": run.state.name, "message": run.state.message}}))
"""


def _runs(server: PrefectServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.api("/flow_runs/filter", {"limit": 50})
    return found


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[PrefectServer]:
    """A server of its own: two workers' load stays off the session's server (whose log
    test_prefect_server checks for tracebacks; this one's SQLite, under two workers on a loaded
    2-core machine, logs 'database is locked' and failed first heartbeats that the workers
    retry: Prefect's own, not what this test is about)."""
    server = PrefectServer(tmp_path / "prefect")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_a_sweep_split_over_two_workers_records_each_model_once(
    own_server: PrefectServer, tmp_path: Path
) -> None:
    prefect_server = own_server
    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    models = fleet_inventory(inventory, {"high": 6})
    state = tmp_path / "state"
    state.mkdir()
    drift = {"high-model-1": 0.6}
    rt = build_runtime(state, catalog, inventory, drift=drift)
    env = runtime_env(state, catalog, inventory, drift, delay_s=0.2) | {
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "src")]),
    }
    workers = [
        prefect_server.worker(
            POOL, tmp_path, tmp_path / f"home-{n}", env, limit=1, name=f"shard-worker-{n}"
        )
        for n in (1, 2)
    ]
    try:
        done = subprocess.run(
            [sys.executable, "-c", DEPLOY_AND_RUN],
            env=clean_env(tmp_path / "client-home", prefect_server.api_url) | env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        for worker in workers:
            worker.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads(line) for line in done.stdout.splitlines()[-2:])

    # the first run: high-model-1 drifted, its gate pending -> Blocked, naming it
    assert first["state"] == "Blocked", first
    assert "high-model-1" in first["message"]
    runs = {r["id"]: r for r in _runs(prefect_server)}
    shard_runs = [r for r in runs.values() if r["parameters"].get("shard") == 1]
    assert len(shard_runs) == 2  # one second shard per sweep run
    first_shard = min(shard_runs, key=lambda r: str(r["created"]))
    assert first_shard["name"] == "sweep high, shard 2/2"

    by_flow_run: dict[str, list[str]] = {}
    for model in models:
        [run] = rt.store.list_runs(model)  # exactly one run per model, never two
        assert run.status in ("succeeded", "failed")
        assert run.idempotency_key == f"sweep:high:{SLOT}:{model}"
        assert len(rt.store.verdicts_for(run.id)) == 2
        by_flow_run.setdefault(str(run.flow_run_id), []).append(model)
    assert by_flow_run == {first["id"]: models[0::2], first_shard["id"]: models[1::2]}
    # each worker ran one of the first sweep's two flow runs: the labels a worker gives the run
    # it submits (a worker that also tried the other run was refused its Pending state, and
    # its log mentions that run's id too)
    ran_by = {runs[run_id]["labels"].get("prefect.worker.name") for run_id in by_flow_run}
    assert ran_by == {"shard-worker-1", "shard-worker-2"}, ran_by

    # the same slot again: every model already recorded, nothing run again (the first flow run
    # finds its shard's models recorded and does not wait for that shard's flow run)
    assert second["state"] == "Skipped", second
    assert all(len(rt.store.list_runs(m)) == 1 for m in models)
    assert len(rt.store.list_gates(model="high-model-1")) == 1
