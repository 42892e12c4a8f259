"""``/slack/interactions`` under attack, over real uvicorn (issue #15).

Unsigned noise is counted, never chained; bodies over 64 KiB get 413; validly signed but
malformed payloads get 400 with a recorded refusal that names the problem; the replay cache is
in the database, so a second replica (another app on the same database) refuses a replay too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from slack_helpers import click_body, decision_body, failing_finding, make_runtime, signed
from web_world import OUTSIDER, client, serving

from prodcontrol.control.gates import decisions
from prodcontrol.evidence.records import Finding, Gate
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.web import metrics
from prodcontrol.web.slack import MAX_BODY_BYTES

HIGH = "fraud-detector"
DANA, GUSTAV = "U0DANA004", "U0GUSTAV7"


@dataclass
class World:
    url: str
    rt: Runtime
    finding: Finding
    gate: Gate

    def now(self) -> int:
        return int(self.rt.clock.now().timestamp())

    def post(
        self, body: bytes, headers: dict[str, str], url: str | None = None
    ) -> tuple[int, dict[str, object]]:
        with client(url or self.url, OUTSIDER) as http:
            answer = http.post("/slack/interactions", content=body, headers=headers)
        return answer.status_code, answer.json()

    def chain_length(self) -> int:
        return self.rt.store.chain_head()[0]

    def refusals(self) -> list[dict[str, object]]:
        return [e.payload for e in self.rt.store.events() if e.kind == "slack.request_refused"]


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[World]:
    rt = make_runtime(tmp_path, database_url, ManualClock())
    finding = failing_finding(rt, HIGH)
    gate = decisions.open_finding_gate(rt, finding, "high")
    with serving(rt) as url:
        yield World(url, rt, finding, gate)


def payload_body(payload: object) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_fifty_unsigned_posts_are_counted_and_do_not_grow_the_chain(world: World) -> None:
    before, counted = world.chain_length(), metrics.value("slack_requests_refused", "bad_signature")
    body = click_body(DANA, "approve", world.finding.id, world.gate.id)
    for attempt in range(50):
        headers = {
            "X-Slack-Request-Timestamp": str(world.now()),
            "X-Slack-Signature": f"v0={attempt:064x}",
        }
        assert world.post(body, headers)[0] == 401
    assert world.chain_length() == before
    assert metrics.value("slack_requests_refused", "bad_signature") == counted + 50
    with client(world.url, OUTSIDER) as http:
        shown = http.get("/metrics", headers={"Authorization": f"Bearer {'x' * 3}"})
        assert shown.status_code == 401  # the counters are for signed-in people


def test_a_body_over_64_kib_is_413_and_not_chained(world: World) -> None:
    before = world.chain_length()
    body = b"payload=" + b"x" * MAX_BODY_BYTES
    status, answer = world.post(body, signed(body, world.now()))
    assert (status, answer["error"]) == (413, "too_large")
    assert world.chain_length() == before


@pytest.mark.parametrize(
    ("problem", "payload"),
    [
        ("user as a string", {"type": "block_actions", "user": "U0DANA004", "actions": []}),
        (
            "button value is a JSON list",
            {
                "type": "block_actions",
                "user": {"id": DANA},
                "actions": [{"action_id": "prodcontrol_approve", "value": "[1, 2]"}],
            },
        ),
        (
            "unknown gate id",
            {
                "type": "block_actions",
                "user": {"id": DANA},
                "actions": [
                    {
                        "action_id": "prodcontrol_approve",
                        "value": json.dumps({"gate_id": "no-such-gate"}),
                    }
                ],
            },
        ),
        (
            "bad private_metadata",
            {
                "type": "view_submission",
                "user": {"id": DANA},
                "view": {"callback_id": "prodcontrol_waiver", "private_metadata": "{not json"},
            },
        ),
        ("actions not a list", {"type": "block_actions", "user": {"id": DANA}, "actions": "x"}),
        ("payload is a list", [1, 2, 3]),
    ],
)
def test_validly_signed_malformed_payloads_get_400_with_a_recorded_refusal(
    world: World, problem: str, payload: object
) -> None:
    body = payload_body(payload)
    status, answer = world.post(body, signed(body, world.now()))
    assert status == 400, (problem, answer)
    [recorded] = world.refusals()
    assert recorded["status"] == 400 and recorded["why"] == answer["message"]
    assert str(answer["message"]).strip(), problem
    assert world.rt.store.decisions_for(world.gate.id) == []


def test_a_waiver_of_1e9_days_is_refused_in_the_modal_not_a_500(world: World) -> None:
    view = {
        "callback_id": "prodcontrol_waiver",
        "private_metadata": json.dumps({"finding_id": world.finding.id}),
        "state": {
            "values": {"reason": {"value": {"value": "fine"}}, "days": {"value": {"value": "1e9"}}}
        },
    }
    for days in ("1e9", "1000000000", "-3", "7.5"):
        view["state"]["values"]["days"]["value"]["value"] = days  # type: ignore[index]
        body = payload_body({"type": "view_submission", "user": {"id": GUSTAV}, "view": view})
        status, answer = world.post(body, signed(body, world.now()))
        assert (status, answer.get("response_action")) == (200, "errors"), (days, answer)
        assert "days" in answer["errors"]  # type: ignore[operator]
    assert world.rt.store.list_waivers() == []


def test_a_replay_to_a_second_replica_is_refused(world: World, tmp_path: Path) -> None:
    body = decision_body(DANA, world.gate.id, "approve", "drift explained")
    headers = signed(body, world.now())
    assert world.post(body, headers)[0] == 200
    replica = make_runtime(
        tmp_path / "replica", world.rt.settings.resolved_database_url, world.rt.clock
    )  # type: ignore[arg-type]
    with serving(replica) as second:
        status, answer = world.post(body, headers, url=second)
    assert (status, answer["error"]) == (401, "replayed")
    assert [d.person for d in world.rt.store.decisions_for(world.gate.id)] == ["dana"]


def test_one_slack_user_cannot_close_the_two_person_gate(world: World) -> None:
    first = decision_body(DANA, world.gate.id, "approve", "one")
    assert world.post(first, signed(first, world.now()))[0] == 200
    second = decision_body(DANA, world.gate.id, "approve", "two")
    status, answer = world.post(second, signed(second, world.now()))
    assert (status, answer["error"]) == (403, "decision_refused")
    assert world.rt.store.get_gate(world.gate.id).status == "pending"
    third = decision_body(GUSTAV, world.gate.id, "approve", "three")
    assert world.post(third, signed(third, world.now()))[0] == 200
    assert world.rt.store.get_gate(world.gate.id).status == "approved"
