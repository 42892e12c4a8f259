"""A failing control's escalation reaches each named owner in order, stops when acknowledged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from slack_helpers import failing_finding, make_runtime, open_gate

from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.errors import DecisionRefused
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

EMEKA, DANA = "DU0EMEKA05", "DU0DANA004"  # DM channels the local server opens for them


def drain(rt: Runtime) -> int:
    sender = OutboxSender(rt.store, rt.notifier, rt.clock, workers=1)
    return sender.drain().sent


def buttons(message: dict[str, object]) -> list[str]:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    actions = [b for b in blocks if b["type"] == "actions"]
    return [e["action_id"].removeprefix("prodcontrol_") for a in actions for e in a["elements"]]


def test_chain_reaches_each_owner_in_order_and_stops_when_acknowledged(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(
        tmp_path, database_url, clock, slack_server, prefect_ui_url="http://prefect.local"
    )
    finding = failing_finding(rt)
    open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    escalation.after_run(rt, finding.run_id)  # a second call starts nothing new
    [esc] = rt.store.list_escalations()
    assert (esc.step, esc.next_due_at) == (1, clock.now() + timedelta(hours=4))
    assert drain(rt) == 1

    first = slack_server.messages()[0]
    assert first["channel"] == EMEKA
    assert buttons(first) == ["approve", "reject", "acknowledge"]  # emeka holds no exception right
    text = str(first["blocks"])
    for expected in (
        "credit-limit-regressor v3",
        "medium / production",
        "dataset-drift",
        "0.42",
        "fail above 0.3",
        "http://prefect.local/runs/flow-run/flow-123",
        "Evidence",
    ):
        assert expected in text

    clock.advance(timedelta(hours=3, minutes=59))
    assert escalation.tick(rt).advanced == 0
    clock.advance(timedelta(minutes=1))
    result = escalation.tick(rt)
    assert (result.advanced, result.breaches["acknowledge"]) == (1, 0)  # SLA is 4h: not yet over
    assert drain(rt) == 1
    second = slack_server.messages(DANA)[0]
    assert buttons(second) == ["approve", "reject", "acknowledge", "request_waiver"]
    assert "Also told: Emeka Adeyemi" in str(second["blocks"])

    clock.advance(timedelta(hours=20))
    result = escalation.tick(rt)
    assert (result.advanced, result.breaches["acknowledge"]) == (1, 1)
    assert drain(rt) == 1
    assert [m["channel"] for m in slack_server.messages()][-1].startswith("C")  # #model-risk

    done = escalation.acknowledge(rt, esc.id, "dana", "cli")
    assert (done.status, done.acknowledged_by) == ("acknowledged", "dana")
    clock.advance(timedelta(days=3))
    assert escalation.tick(rt).advanced == 0
    assert drain(rt) == 0
    assert len(slack_server.messages()) == 3
    assert (
        rt.store.get_gate(rt.store.list_gates()[0].id).status == "pending"
    )  # ack is not a decision


def test_unacknowledged_chain_reminds_then_is_exhausted(
    tmp_path: Path, sqlite_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, sqlite_url, clock, slack_server)
    finding = failing_finding(rt)
    escalation.after_run(rt, finding.run_id)
    reminders = 0
    for _ in range(6):
        clock.advance(timedelta(hours=12))
        reminders += escalation.tick(rt).reminders
    [esc] = rt.store.list_escalations()
    assert esc.status == "exhausted"
    assert reminders == 1  # medium: one day after the channel step, within decide_within 2d
    drain(rt)
    reminder = [m for m in slack_server.messages() if str(m["text"]).startswith("Reminder")]
    assert sorted(m["channel"] for m in reminder) == [DANA, EMEKA]  # every role of the chain


def test_only_owners_and_holders_may_acknowledge(tmp_path: Path, sqlite_url: str) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, sqlite_url, clock)
    finding = failing_finding(rt)
    escalation.after_run(rt, finding.run_id)
    [esc] = rt.store.list_escalations()
    with pytest.raises(DecisionRefused, match="may not acknowledge"):
        escalation.acknowledge(rt, esc.id, "ivan", "cli")
    assert rt.store.get_escalation(esc.id).status == "active"
    assert [e.kind for e in rt.store.events() if e.kind.endswith("refused")] == [
        "escalation.acknowledge_refused"
    ]


def test_tick_starts_escalations_a_crash_left_out(tmp_path: Path, sqlite_url: str) -> None:
    clock = ManualClock()
    rt = make_runtime(tmp_path, sqlite_url, clock)
    failing_finding(rt)  # the runner died before after_run
    assert escalation.tick(rt).started == 1
    assert escalation.tick(rt).started == 0
    assert len(rt.store.list_notifications()) == 1
