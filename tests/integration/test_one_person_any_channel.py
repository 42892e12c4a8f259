"""A two-person gate that one person cannot close on any channel (issue #15).

Dana approves once from the CLI with her token, then tries every other way in: a signed Slack
click, the web page through the trusted proxy, her Bearer token, an Airflow answer, and a
break-glass "as gustav" from the same account. The gate stays pending with one approval.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr
from slack_helpers import decision_body, failing_finding, make_runtime, signed
from web_world import HEADER, OUTSIDER, PROXY, client, serving

from identity_helpers import TokenBook
from prodcontrol.cli.app import run
from prodcontrol.clock import SystemClock
from prodcontrol.control.gates import decisions
from prodcontrol.errors import DecisionRefused
from prodcontrol.identity.service import airflow_actor

HIGH = "fraud-detector"


def test_dana_alone_cannot_close_the_two_person_gate(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = make_runtime(
        tmp_path,
        sqlite_url,
        SystemClock(),  # the CLI process below reads the real time too
        web_auth_header=HEADER,
        web_trusted_proxies=[f"{PROXY}/32"],
        web_token=SecretStr("read-only"),
    )
    gate = decisions.open_finding_gate(rt, failing_finding(rt, HIGH), "high")
    tokens = TokenBook(rt)
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    config.write_text(
        f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{rt.settings.inventory_dir}"\n'
        f'database_url = "{sqlite_url}"\n'
    )
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setenv("PRODCONTROL_TOKEN", tokens.token("dana"))
    assert run(["gates", "approve", gate.id, "--reason", "drift explained"]) == 0
    assert run(["gates", "approve", gate.id, "--as", "gustav", "--reason", "me too"]) == 2

    with serving(rt) as url:
        with client(url, OUTSIDER) as http:  # Slack, signed, from dana's Slack id
            body = decision_body("U0DANA004", gate.id, "approve", "again from Slack")
            answer = http.post("/slack/interactions", content=body, headers=signed(body, 0))
            assert answer.status_code == 401  # signed in 1970: stale
            now = int(rt.clock.now().timestamp())
            answer = http.post("/slack/interactions", content=body, headers=signed(body, now))
            assert answer.status_code == 403 and "already decided" in answer.text
            bearer = {"Authorization": f"Bearer {tokens.token('dana')}"}
            form = {"decision": "approve", "reason": "again"}
            answer = http.post(f"/gates/{gate.id}/decide", data=form, headers=bearer)
            assert answer.status_code == 403 and "already decided" in answer.text
            as_gustav = {HEADER: "gustav"}  # the header from a non-proxy address is ignored
            answer = http.post(f"/gates/{gate.id}/decide", data=form, headers=as_gustav)
            assert answer.status_code == 401
        with client(url, PROXY) as http:  # through the real proxy: still dana
            page = http.get(f"/models/{HIGH}", headers={HEADER: "dana"})
            assert page.status_code == 200 and 'name="csrf"' not in page.text
            csrf = re.search(
                r'name="csrf" value="([^"]+)"',
                http.get(f"/models/{HIGH}", headers={HEADER: "gustav"}).text,
            )
            assert csrf is not None  # gustav's form token does not work for dana
            answer = http.post(
                f"/gates/{gate.id}/decide",
                data={**form, "csrf": csrf.group(1)},
                headers={HEADER: "dana"},
            )
            assert answer.status_code == 403

    actor = airflow_actor(rt, "dana.fischer@example.com")
    with pytest.raises(DecisionRefused, match="already decided"):
        decisions.decide(
            rt,
            gate.id,
            person=actor.person,
            decision="approve",
            channel="airflow",
            reason="HITL",
            credential=actor.credential,
        )
    monkeypatch.setenv("PRODCONTROL_TOKEN", "")
    code = run(["gates", "approve", gate.id, "--break-glass", "--as", "gustav", "--reason", "x"])
    assert code == 2

    closed = rt.store.get_gate(gate.id)
    assert closed.status == "pending"
    assert [(d.person, d.channel) for d in rt.store.decisions_for(gate.id)] == [("dana", "cli")]
