"""Builders for the Slack/escalation tests (a unique module name: tests have no packages)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pydantic import SecretStr

from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.clock import Clock
from prodcontrol.evidence.records import Finding, FindingIn, Gate, GateIn, VerdictIn
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeRegistry
from prodcontrol.testing.slack_server import LocalSlackServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
MODEL = "credit-limit-regressor"  # medium tier: emeka at once, dana after 4h, #model-risk after 1d


def make_runtime(
    tmp_path: Path,
    database_url: str,
    clock: Clock,
    slack: LocalSlackServer | None = None,
    **settings: Any,
) -> Runtime:
    config = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=EXAMPLES,
        database_url=database_url,
        slack_signing_secret=SecretStr(SECRET),
        **settings,
    )
    registry = FakeRegistry()
    rt = Runtime(config, clock, registry=registry)
    for name in rt.config.inventory.models:
        registry.add_version(name, "3")
        registry.set_alias(name, "champion", "3")
    if slack is not None:
        rt.__dict__["notifier"] = SlackNotifier(
            slack.token,
            people=rt.config.inventory.people,
            base_url=slack.base_url,
            store=rt.store,
            retries=2,
            backoff=0.01,
        )
    return rt


def failing_finding(rt: Runtime, model: str = MODEL, control: str = "dataset-drift") -> Finding:
    entry = rt.config.model(model)
    run = rt.store.start_run(model, "3", entry.tier, "cli", flow_run_id="flow-123")
    rt.store.finish_run(
        run.id,
        "failed",
        verdicts=[
            VerdictIn(
                control_id=control,
                kind="drift",
                verdict="fail",
                value=0.42,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason="0.42 is at or above fail threshold 0.3",
            )
        ],
        artifacts=[],
        findings=[FindingIn(control_id=control, severity="high", blocking=True)],
    )
    return next(f for f in rt.store.list_findings(model=model) if f.run_id == run.id)


def open_gate(rt: Runtime, finding: Finding) -> Gate:
    return rt.store.open_gate(
        GateIn(
            finding_id=finding.id,
            model=finding.model,
            model_version=finding.model_version,
            kind="finding",
            right="escalation_outcome",
            required_approvals=1,
            on_approve="accept",
            on_reject="rollback",
        )
    )


def signed(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def click_body(
    slack_user: str, action: str, finding_id: str, gate_id: str | None, nonce: str = ""
) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": slack_user},
        "trigger_id": f"trigger-{nonce or time.time_ns()}",
        "actions": [
            {
                "action_id": f"prodcontrol_{action}",
                "value": json.dumps({"finding_id": finding_id, "gate_id": gate_id}),
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def decision_body(slack_user: str, gate_id: str, decision: str, reason: str) -> bytes:
    """The submission of the reason modal that Approve and Reject open: it decides the gate."""
    view = {
        "callback_id": "prodcontrol_decision",
        "private_metadata": json.dumps({"gate_id": gate_id, "decision": decision}),
        "state": {"values": {"reason": {"value": {"value": reason}}}},
    }
    payload = {"type": "view_submission", "user": {"id": slack_user}, "view": view}
    return urlencode({"payload": json.dumps(payload)}).encode()
