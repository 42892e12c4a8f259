"""MLflow registry webhooks, end to end: a real ``mlflow server`` (SQLite backend) delivers to a
``prodcontrol serve`` app under uvicorn on loopback, registered with ``prodcontrol webhooks
register``; a serving alias moved by hand is re-evaluated at once, a new version gets its
readiness checks; forged, stale and replayed deliveries change nothing.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from prodcontrol.cli import app as cli_app
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.web.app import create_app
from prodcontrol.web.mlflow_webhook import PATH, expected_signature

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-test-8c1f"


@dataclass
class World:
    rt: Runtime
    model: str
    url: str
    mlflow_uri: str
    webhook_id: str


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_model_inventory(folder: Path) -> tuple[Path, str]:
    """The examples with only fraud-detector, under a name no other test uses."""
    inventory = folder / "inventory"
    shutil.copytree(ROOT / "examples", inventory)
    name = f"fraud-wh-{uuid.uuid4().hex[:6]}"
    doc = yaml.safe_load((inventory / "models.yaml").read_text())
    [entry] = [m for m in doc["models"] if m["name"] == "fraud-detector"]
    entry["name"] = name
    doc["models"] = [entry]
    (inventory / "models.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return inventory, name


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mlflow_server: Any) -> Iterator[World]:
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.testing.seed import seed_mlflow

    if not mlflow_server.running:
        mlflow_server.start()
    folder = tmp_path_factory.mktemp("webhooks")
    inventory, model = one_model_inventory(folder)
    seed_mlflow(
        mlflow_server.uri, load_config(ROOT / "control_catalog", inventory), log_datasets=False
    )
    port = free_port()
    settings = Settings(
        state_dir=folder / "state",
        inventory_dir=inventory,
        database_url=f"sqlite:///{folder / 'evidence.db'}",
        mlflow_tracking_uri=mlflow_server.uri,
        mlflow_webhook_secret=SecretStr(SECRET),
        web_base_url=f"http://127.0.0.1:{port}",
    )
    rt = Runtime(settings)
    server = uvicorn.Server(
        uvicorn.Config(create_app(rt), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for("uvicorn", lambda: server.started, 30)
    # the way an MLOps engineer registers it: the CLI, settings from the environment
    env = {
        "PRODCONTROL_STATE_DIR": str(folder / "cli-state"),
        "PRODCONTROL_INVENTORY_DIR": str(inventory),
        "PRODCONTROL_MLFLOW_TRACKING_URI": mlflow_server.uri,
        "PRODCONTROL_MLFLOW_WEBHOOK_SECRET": SECRET,
        "PRODCONTROL_WEB_BASE_URL": settings.web_base_url,
        "PRODCONTROL_CONFIG": str(folder / "none.toml"),
    }
    first = CliRunner().invoke(
        cli_app, ["webhooks", "register", "--name", model, "--json"], env=env
    )
    assert first.exit_code == 0, first.output
    created = json.loads(first.stdout)
    assert created["status"] == "created" and created["url"].endswith(PATH)
    again = CliRunner().invoke(
        cli_app, ["webhooks", "register", "--name", model, "--json"], env=env
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) | {"status": "x"} == created | {"status": "x"}
    assert json.loads(again.stdout)["status"] == "updated"  # no second webhook
    time.sleep(1.5)  # the server's webhook cache (MLFLOW_WEBHOOK_CACHE_TTL=1)
    try:
        yield World(rt, model, settings.web_base_url + PATH, mlflow_server.uri, created["webhook"])
    finally:
        from prodcontrol.adapters.mlflow_webhooks import delete_webhook

        if mlflow_server.running:
            delete_webhook(mlflow_server.uri, created["webhook"])
        server.should_exit = True
        thread.join(timeout=10)


def webhook_runs(world: World) -> list[Any]:
    return [r for r in world.rt.store.list_runs(model=world.model) if r.trigger == "mlflow-webhook"]


def events(world: World, kind: str) -> list[Any]:
    return [e for e in world.rt.store.events() if e.kind == kind and e.model == world.model]


def test_a_serving_alias_moved_by_hand_is_re_evaluated_at_once(world: World) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(world.mlflow_uri, registry_uri=world.mlflow_uri)
    before = len(webhook_runs(world))
    client.set_registered_model_alias(world.model, "champion", "1")  # outside any gate
    runs = wait_for(
        "the re-evaluation run",
        lambda: [r for r in webhook_runs(world)[before:] if r.status != "running"],
    )
    assert runs[0].model_version == "1"
    [event] = wait_for(
        "the alias event", lambda: events(world, "mlflow.model_version_alias.created")
    )
    assert event.payload["alias"] == "champion" and event.payload["version"] == "1"
    verdicts = world.rt.store.verdicts_for(runs[0].id)
    assert verdicts and {v.control_id for v in verdicts} >= {"dataset-drift", "ownership-readiness"}
    # a failure escalates on the high tier's chain, and the run's gate is open
    assert any(v.verdict in {"fail", "error"} for v in verdicts)  # v1 misses the baseline
    chains = wait_for(
        "the tier's escalation chain",
        lambda: [e for e in world.rt.store.list_escalations() if e.model == world.model],
    )
    assert chains[0].status == "active"
    assert wait_for(
        "the run's gate",
        lambda: [g for g in world.rt.store.list_gates(model=world.model) if g.model_version == "1"],
    )

    client.delete_registered_model_alias(world.model, "champion")
    gone = wait_for(
        "the run after the alias was deleted",
        lambda: [r for r in webhook_runs(world)[before + 1 :] if r.status != "running"],
    )
    assert any(v.verdict == "error" for v in world.rt.store.verdicts_for(gone[0].id))
    assert events(world, "mlflow.model_version_alias.deleted")
    client.set_registered_model_alias(world.model, "champion", "2")  # put it back


def test_a_new_version_is_recorded_and_its_readiness_checked(world: World) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(world.mlflow_uri, registry_uri=world.mlflow_uri)
    serving = client.get_model_version_by_alias(world.model, "champion")
    made = client.create_model_version(world.model, serving.source, run_id=serving.run_id)
    [event] = wait_for("the version event", lambda: events(world, "mlflow.model_version.created"))
    assert event.payload["version"] == made.version
    run = wait_for(
        "the readiness run",
        lambda: [
            r
            for r in webhook_runs(world)
            if r.model_version == made.version and r.status != "running"
        ],
    )[0]
    assert run.sample["candidate_version"] == made.version
    # what it found is evidence like any run's: a blocking finding opens that version's gate
    blocking = [
        f
        for f in world.rt.store.list_findings(model=world.model)
        if f.run_id == run.id and f.blocking
    ]
    gates = [
        g for g in world.rt.store.list_gates(model=world.model) if g.model_version == made.version
    ]
    assert bool(gates) == bool(blocking)


def _post(world: World, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(world.url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _signed(secret: str, body: str, delivery: str, at: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": str(at),
        "X-MLflow-Signature": expected_signature(secret, delivery, str(at), body),
    }


def test_forged_stale_and_replayed_deliveries_change_nothing(world: World) -> None:
    from prodcontrol.web import metrics

    body = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-12-01T00:00:00+00:00",
            "data": {"name": world.model, "alias": "shadow", "version": "1"},
        }
    )
    now = int(time.time())

    def webhook_entries() -> list[int]:
        # only what a delivery records: the module's earlier tests may still be finishing a
        # re-evaluation in the background, whose run, anchor and escalation entries are not noise
        return [e.seq for e in world.rt.store.events() if e.kind.startswith("mlflow.")]

    before = webhook_entries()
    refused_before = sum(
        metrics.value("mlflow_webhooks_refused", r) for r in ("bad_signature", "stale", "unsigned")
    )
    for headers in (
        _signed("guessed-secret", body, "d-forged", now),  # an attacker without the secret
        _signed(SECRET, body, "d-stale", now - 3600),  # a genuine one captured an hour ago
        {"Content-Type": "application/json"},  # no signature at all
    ):
        status, answer = _post(world, body.encode(), headers)
        assert status == 401, answer
    tampered = _signed(SECRET, body, "d-tamper", now)
    status, _ = _post(world, body.replace("shadow", "champion").encode(), tampered)
    assert status == 401
    assert webhook_entries() == before  # noise never reaches the chain
    refused_after = sum(
        metrics.value("mlflow_webhooks_refused", r) for r in ("bad_signature", "stale", "unsigned")
    )
    assert refused_after == refused_before + 4

    genuine = _signed(SECRET, body, f"d-{uuid.uuid4().hex}", now)
    assert _post(world, body.encode(), genuine)[1]["accepted"] is True
    status, answer = _post(world, body.encode(), genuine)  # the same delivery again
    assert status == 200 and answer == {
        "accepted": False,
        "duplicate": genuine["X-MLflow-Delivery-Id"],
    }
    recorded = wait_for(
        "the one alias event",
        lambda: [
            e
            for e in events(world, "mlflow.model_version_alias.created")
            if e.payload["alias"] == "shadow"
        ],
    )
    assert len(recorded) == 1
