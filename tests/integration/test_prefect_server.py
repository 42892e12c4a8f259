"""The tier flows in a team's own Prefect, exactly as the README's "Running in your own Prefect"
section has it: a separately started ``prefect server``, ``prodcontrol deploy --work-pool``,
a process worker started elsewhere without any ``PRODCONTROL_*`` variable. The scheduler must
create runs by itself (``auto_scheduled``), the worker must run them to Completed, the settings
must reach the runs through the deployment (the evidence lands in the deployer's database, not
in a new one in the worker's directory), no secret may be stored in Prefect, and the server must
log no traceback (prefect 3.8.8's scheduler with SQLAlchemy 2.1 failed on every loop).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from prodcontrol.testing.prefect_server import BIN, PrefectServer, clean_env

ROOT = Path(__file__).resolve().parents[2]
POOL = "pc-real"
SECRET = "xoxb-never-in-prefect"
TICK_WAIT_S = 180
"""The ticker fires on the next whole minute; then the worker starts a process for it."""


def _deploy(server: PrefectServer, state: Path, home: Path) -> list[dict[str, Any]]:
    env = clean_env(home, server.api_url) | {
        "PRODCONTROL_STATE_DIR": str(state),
        "PRODCONTROL_SLACK_BOT_TOKEN": SECRET,
    }
    done = subprocess.run(
        [str(BIN / "prodcontrol"), "deploy", "--work-pool", POOL, "--inventory", "examples",
         "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def _completed_ticks(server: PrefectServer, deployment_id: str) -> list[dict[str, Any]]:
    runs = [r for r in server.flow_runs(deployment_id) if r["auto_scheduled"]]
    bad = [r for r in runs if r["state_type"] in ("FAILED", "CRASHED")]
    assert not bad, [(r["name"], r["state"]["message"]) for r in bad]
    return [r for r in runs if r["state_type"] == "COMPLETED"]


@pytest.mark.slow
def test_scheduled_ticks_run_on_a_worker_with_the_deployments_settings(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    client_home = tmp_path / "client-home"
    rows = {r["deployment"]: r for r in _deploy(prefect_server, state, client_home)}
    assert {r["work_pool"] for r in rows.values()} == {POOL}
    ticker = prefect_server.api(f"/deployments/{rows['escalation-ticker']['id']}")

    env = ticker["job_variables"]["env"]
    assert env["PRODCONTROL_STATE_DIR"] == str(state)
    assert env["PRODCONTROL_DATABASE_URL"] == f"sqlite:///{state / 'evidence.db'}"
    assert env["PRODCONTROL_INVENTORY_DIR"] == str(ROOT / "examples")
    assert "PRODCONTROL_SLACK_BOT_TOKEN" not in env
    for row in rows.values():
        stored = json.dumps(prefect_server.api(f"/deployments/{row['id']}"))
        assert SECRET not in stored, f"{row['deployment']} stores the Slack token"

    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    worker = prefect_server.worker(POOL, elsewhere, tmp_path / "worker-home")
    try:
        deadline = time.monotonic() + TICK_WAIT_S
        while not _completed_ticks(prefect_server, ticker["id"]):
            assert worker.popen.poll() is None, worker.text()[-3000:]
            assert time.monotonic() < deadline, (
                f"no scheduled tick completed in {TICK_WAIT_S} s; worker log:\n"
                + worker.text()[-3000:]
            )
            time.sleep(1)
    finally:
        worker.stop()

    assert (state / "evidence.db").is_file(), "the tick did not use the deployment's database"
    assert not (elsewhere / ".prodcontrol").exists(), "the tick made a database of its own"
    assert prefect_server.tracebacks() == []
