"""Test helpers: seed the real MLflow server with the example models, build runtimes."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from mlflow import MlflowClient
from prodcontrol.clock import Clock
from prodcontrol.evidence.records import Finding, FindingIn, VerdictIn
from prodcontrol.identity import service as identity
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings

METRICS = {"churn-classifier": "roc_auc", "credit-limit-regressor": "r2", "fraud-detector": "auc"}
# each use case's KPI (examples/models.yaml), at a value that meets its target
KPIS = {
    "churn-classifier": ("retained_per_1k", 45.0),
    "credit-limit-regressor": ("net_revenue_per_card", 125.0),
    "fraud-detector": ("fraud_value_caught_share", 0.65),
}


def seed_model(tracking_uri: str, model: str) -> MlflowClient:
    """Versions 1 (approved) and 2 (serving as ``champion``), each from a run with metrics.

    Seeding a model already there puts ``champion`` back on version 2 (a test before may have
    rolled it back).
    """
    client = MlflowClient(tracking_uri)
    if client.search_registered_models(filter_string=f"name = '{model}'"):
        client.set_registered_model_alias(model, "champion", "2")
        return client
    experiment = client.get_experiment_by_name("training")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("training")
    client.create_registered_model(model)
    for version, score in (("1", 0.91), ("2", 0.90)):
        run = client.create_run(experiment_id, run_name=f"{model}-v{version}")
        for key in set(METRICS.values()):
            client.log_metric(run.info.run_id, key, score)
        client.log_metric(run.info.run_id, *KPIS[model])
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "MLmodel").write_text("flavors: {}\n")
            client.log_artifacts(run.info.run_id, tmp, "model")
        client.set_terminated(run.info.run_id)
        made = client.create_model_version(
            model, f"{run.info.artifact_uri}/model", run_id=run.info.run_id
        )
        assert made.version == version
    client.set_model_version_tag(model, "1", "prodcontrol.approved", "true")
    client.set_model_version_tag(model, "1", "prodcontrol.baseline", "true")
    client.set_registered_model_alias(model, "champion", "2")
    return client


def runtime(clock: Clock | None = None) -> Runtime:
    """What the operators see: conftest's environment, MLflow from the Airflow connection."""
    tracking_uri = os.environ.get("AIRFLOW_CONN_PRODCONTROL_MLFLOW")
    return Runtime(load_settings(mlflow_tracking_uri=tracking_uri), clock)


def record_finding(rt: Runtime, model: str, verdict: str = "fail") -> Finding:
    """A finished control run with one finding on ``dataset-drift`` (what a check records)."""
    entry = rt.config.model(model)
    run = rt.store.start_run(model, "2", entry.tier, "airflow")
    rt.store.finish_run(
        run.id,
        "failed",
        [
            VerdictIn(
                control_id="dataset-drift",
                kind="drift",
                verdict=verdict,  # type: ignore[arg-type]
                value=0.6,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason="6 of 10 columns drifted",
            )
        ],
        [],
        [FindingIn(control_id="dataset-drift", severity="high", blocking=True)],
    )
    return next(f for f in rt.store.list_findings(model=model) if f.run_id == run.id)


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


# ----------------------------------------------------------------- the other channels' people

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the test app's signing secret
_TOKENS: dict[str, str] = {}


def token_for(rt: Runtime, person: str) -> str:
    """``person``'s personal token (the CLI's PRODCONTROL_TOKEN), issued once per session by
    the inventory's mlops_admin, whose own token bootstraps the session's evidence DB."""
    if not _TOKENS:
        people = rt.config.inventory.people.values()
        admin = next(p.id for p in people if identity.ADMIN_ROLE in p.roles)
        _TOKENS[admin] = identity.issue(rt, admin, by=None, bootstrap=True).text
    if person not in _TOKENS:
        admin_text = next(iter(_TOKENS.values()))
        by = identity.authenticate(rt, admin_text)
        _TOKENS[person] = identity.issue(rt, person, by=by).text
    return _TOKENS[person]


def slack_submission(slack_user: str, gate_id: str, decision: str, reason: str) -> bytes:
    """The submission of the reason modal that Slack's Approve and Reject buttons open."""
    view = {
        "callback_id": "prodcontrol_decision",
        "private_metadata": json.dumps({"gate_id": gate_id, "decision": decision}),
        "state": {"values": {"reason": {"value": {"value": reason}}}},
    }
    payload = {"type": "view_submission", "user": {"id": slack_user}, "view": view}
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_signed(body: bytes, secret: str) -> dict[str, str]:
    """Slack's request signature headers for ``body``, signed now."""
    timestamp = int(time.time())
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
