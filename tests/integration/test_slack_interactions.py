"""``POST /slack/interactions``: refused when forged, altered, old, replayed (401, counted, not
chained), unknown or without the right (403, nothing decided, refusal recorded); an Approve click
decides the gate and the original Slack messages are updated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from slack_helpers import (
    click_body,
    decision_body,
    failing_finding,
    make_runtime,
    open_gate,
    signed,
)

from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.evidence.records import Finding, Gate
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer
from prodcontrol.web import metrics
from prodcontrol.web.slack import router

EMEKA, HANA = "U0EMEKA05", "U0HANA008"  # emeka may decide; hana owns business outcome, no right


class World:
    def __init__(self, rt: Runtime, client: TestClient, finding: Finding, gate: Gate) -> None:
        self.rt, self.client, self.finding, self.gate = rt, client, finding, gate
        self.counted_before = dict(metrics.counters)

    def now(self) -> int:
        return int(self.rt.clock.now().timestamp())

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        answer = self.client.post("/slack/interactions", content=body, headers=headers)
        return answer.status_code, answer.json()

    def click(self, user: str, action: str, nonce: str = "") -> bytes:
        return click_body(user, action, self.finding.id, self.gate.id, nonce)

    def refusals(self) -> list[str]:
        return [
            str(e.payload["refused"])
            for e in self.rt.store.events()
            if e.kind == "slack.request_refused"
        ]

    def only_counted(self, code: str) -> bool:
        """Unauthenticated: counted as a metric, nothing appended to the evidence chain."""
        key = ("slack_requests_refused", code)
        grew = metrics.counters[key] == self.counted_before.get(key, 0) + 1
        return grew and self.refusals() == []

    def nothing_decided(self) -> bool:
        gate = self.rt.store.get_gate(self.gate.id)
        return gate.status == "pending" and self.rt.store.decisions_for(gate.id) == []


@pytest.fixture
def world(tmp_path: Path, sqlite_url: str, slack_server: LocalSlackServer) -> Iterator[World]:
    rt = make_runtime(tmp_path, sqlite_url, ManualClock(), slack_server)
    finding = failing_finding(rt)
    gate = open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    app = FastAPI()
    app.include_router(router)
    app.state.runtime = rt
    with TestClient(app) as client:
        yield World(rt, client, finding, gate)


def test_forged_signature(world: World) -> None:
    body = world.click(EMEKA, "approve")
    status, answer = world.post(body, signed(body, world.now(), secret="not-the-secret"))
    assert (status, answer["error"]) == (401, "bad_signature")
    assert world.nothing_decided() and world.only_counted("bad_signature")


def test_body_altered_after_signing(world: World) -> None:
    body = world.click(HANA, "approve")
    headers = signed(body, world.now())
    status, _ = world.post(body.replace(HANA.encode(), EMEKA.encode()), headers)
    assert status == 401
    assert world.nothing_decided() and world.only_counted("bad_signature")


def test_six_minutes_old(world: World) -> None:
    body = world.click(EMEKA, "approve")
    status, answer = world.post(body, signed(body, world.now() - 360))
    assert (status, answer["error"]) == (401, "stale_request")
    assert world.nothing_decided() and world.only_counted("stale_request")


def test_replayed(world: World) -> None:
    body = world.click(EMEKA, "acknowledge")
    headers = signed(body, world.now())
    assert world.post(body, headers)[0] == 200
    status, answer = world.post(body, headers)
    assert (status, answer["error"]) == (401, "replayed")
    assert world.nothing_decided() and world.only_counted("replayed")


def test_unknown_slack_user(world: World) -> None:
    body = world.click("U0STRANGER", "approve")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["error"]) == (403, "unknown_slack_user")
    assert world.nothing_decided() and world.refusals() == ["unknown_slack_user"]


def test_owner_without_the_right(world: World) -> None:
    body = world.click(HANA, "approve")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["error"]) == (403, "no_right")
    assert world.nothing_decided() and world.refusals() == ["no_right"]
    [event] = [e for e in world.rt.store.events() if e.kind == "slack.request_refused"]
    assert event.model == "credit-limit-regressor" and event.payload["person"] == "hana"


def test_acknowledge_button_stops_the_chain(world: World) -> None:
    body = world.click(EMEKA, "acknowledge")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["status"]) == (200, "acknowledged")
    assert world.nothing_decided()
    world.rt.clock.advance(timedelta(hours=5))  # type: ignore[attr-defined]
    assert escalation.tick(world.rt).advanced == 0


def test_approve_decides_the_gate_and_updates_the_messages(
    world: World, slack_server: LocalSlackServer
) -> None:
    rt = world.rt
    sender = OutboxSender(rt.store, rt.notifier, rt.clock, workers=1)
    assert sender.drain().sent == 1
    [original] = slack_server.messages()
    assert "prodcontrol_approve" in str(original["blocks"])

    body = world.click(EMEKA, "approve")  # the button asks for the reason first
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["modal"]) == (200, "opened")
    assert slack_server.views()[-1]["view"]["callback_id"] == "prodcontrol_decision"
    assert world.nothing_decided()
    body = decision_submission(world, EMEKA, "approve", "   ")  # no reason: asked again
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["response_action"]) == (200, "errors")
    assert world.nothing_decided()
    body = decision_submission(world, EMEKA, "approve", "drift explained by the campaign")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer) == (200, {"response_action": "clear"})
    gate = rt.store.get_gate(world.gate.id)
    assert gate.status == "approved"
    assert [(d.person, d.channel, d.reason) for d in rt.store.decisions_for(gate.id)] == [
        ("emeka", "slack", "drift explained by the campaign")
    ]
    assert [e.status for e in rt.store.list_escalations()] == ["resolved"]

    assert sender.drain().updated == 1
    [updated] = slack_server.messages()
    assert updated["edited"] and "prodcontrol_approve" not in str(updated["blocks"])
    assert "approve by Emeka Adeyemi via slack" in str(updated["blocks"])
    assert slack_server.posts_by_key() == {k: 1 for k in slack_server.posts_by_key()}


def test_request_waiver_opens_the_modal_for_a_holder(
    world: World, slack_server: LocalSlackServer
) -> None:
    dana = "U0DANA004"  # operating risk: holds the exception right on the medium tier
    body = world.click(dana, "request_waiver")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["modal"]) == (200, "opened")
    view = slack_server.views()[0]["view"]
    assert view["callback_id"] == "prodcontrol_waiver"
    body = world.click(EMEKA, "request_waiver")
    assert world.post(body, signed(body, world.now()))[0] == 403


def decision_submission(world: World, slack_user: str, decision: str, reason: str) -> bytes:
    return decision_body(slack_user, world.gate.id, decision, reason)


def test_a_forged_decision_submission_is_refused_like_a_button(world: World) -> None:
    """An attacker posts the modal's submission directly: rights and rules still apply."""
    body = decision_submission(world, HANA, "approve", "looks fine to me")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["error"]) == (403, "no_right")
    body = decision_submission(world, EMEKA, "promote", "sneaky")
    status, _ = world.post(body, signed(body, world.now()))
    assert status == 400
    assert world.nothing_decided()


def waiver_submission(world: World, slack_user: str, reason: str, days: str) -> bytes:
    view = {
        "callback_id": "prodcontrol_waiver",
        "private_metadata": json.dumps({"finding_id": world.finding.id, "gate_id": world.gate.id}),
        "state": {
            "values": {"reason": {"value": {"value": reason}}, "days": {"value": {"value": days}}}
        },
    }
    payload = {"type": "view_submission", "user": {"id": slack_user}, "view": view}
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_waiver_modal_submission_grants_for_a_holder_only(world: World) -> None:
    body = waiver_submission(world, EMEKA, "known seasonal shift", "7")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["error"]) == (403, "no_right")
    assert world.rt.store.list_waivers() == []

    body = waiver_submission(world, "U0DANA004", "", "7")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["response_action"]) == (200, "errors")

    body = waiver_submission(world, "U0DANA004", "known seasonal shift", "7")
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer) == (200, {"response_action": "clear"})
    [waiver] = world.rt.store.list_waivers()
    assert (waiver.approver, waiver.finding_id) == ("dana", world.finding.id)
    assert waiver.expires_at == world.rt.clock.now() + timedelta(days=7)
