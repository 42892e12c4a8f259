"""decide(), timeouts, waivers and lifecycle against the SQL evidence store (SQLite and PostgreSQL).

The registry is the in-memory FakeRegistry here; test_actions_mlflow.py runs the actions
against a real MLflow server.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from gate_world import TickingClock, make_runtime, passing_run, record_finding, seeded_registry

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.control.gates import actions, decisions, events, waivers
from prodcontrol.control.gates.events import GATE_CLOSED, Handled, Subscriber
from prodcontrol.control.lifecycle import lifecycle
from prodcontrol.engine.findings import plan_findings
from prodcontrol.engine.verdicts import decide as decide_verdict
from prodcontrol.errors import DecisionRefused, StoreConflict, UnreachableError
from prodcontrol.evidence import DomainEvent, EscalationIn, Gate
from prodcontrol.runtime import Runtime
from prodcontrol.testing import FakeRegistry, ManualClock

HIGH, MEDIUM = "fraud-detector", "credit-limit-regressor"


@pytest.fixture
def clock() -> ManualClock:
    return TickingClock()


@pytest.fixture
def registry() -> FakeRegistry:
    return seeded_registry()


@pytest.fixture
def rt(database_url: str, tmp_path: Path, clock: ManualClock, registry: FakeRegistry) -> Runtime:
    return make_runtime(database_url, tmp_path, clock, registry)


def high_gate(rt: Runtime, requested_by: str | None = None) -> Gate:
    finding = record_finding(rt, HIGH, "3")
    return decisions.open_finding_gate(rt, finding, "high", requested_by=requested_by)


def refusals(rt: Runtime, kind: str = "decision_refused") -> list[dict[str, object]]:
    return [e.payload for e in rt.store.events() if e.kind == kind]


# --------------------------------------------------------------------------- deciding


def test_two_person_gate_needs_two_holders_then_accepts(
    rt: Runtime, registry: FakeRegistry
) -> None:
    gate = high_gate(rt)
    assert (gate.required_approvals, gate.status) == (2, "pending")
    assert gate.requested_by == "chen"  # the model_behaviour owner, under separation of duties
    first = decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    assert first.status == "pending" and first.version == gate.version + 1
    assert decisions.who_could_decide(rt, first) == ["dana"]
    done = decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="slack", reason="seasonal"
    )
    assert done.status == "approved"
    recorded = [(d.person, d.channel, d.reason) for d in rt.store.decisions_for(gate.id)]
    assert recorded == [("gustav", "cli", "test reason"), ("dana", "slack", "seasonal")]
    [action] = rt.store.list_actions(HIGH)
    assert (action.action, action.status, action.gate_id) == ("accept", "applied", gate.id)
    assert action.requested_by == "gustav,dana"
    assert rt.store.get_finding(gate.finding_id or "").status == "closed"
    tags = registry.versions[HIGH]["3"].ref.tags
    assert (tags["prodcontrol.last_action"], tags["prodcontrol.last_action_gate"]) == (
        "accept",
        gate.id,
    )
    assert "prodcontrol.approved" not in tags  # accepting a finding is not a promotion
    assert rt.store.verify().ok


def test_one_reject_rolls_back_to_the_last_approved_version_once(
    rt: Runtime, registry: FakeRegistry
) -> None:
    gate = high_gate(rt)
    closed = decisions.decide(
        rt, gate.id, person="gustav", decision="reject", channel="web", reason="drift is real"
    )
    assert closed.status == "rejected"
    assert registry.aliases[HIGH]["champion"] == "2"
    assert registry.versions[HIGH]["3"].ref.tags["prodcontrol.rolled_back"] == "true"
    [action] = rt.store.list_actions(HIGH)
    assert (action.action, action.result["from_version"], action.result["to_version"]) == (
        "rollback",
        "3",
        "2",
    )
    again = actions.apply_gate_outcome(rt, closed)
    assert again == action and len(rt.store.list_actions(HIGH)) == 1
    assert actions.apply_requested(rt) == []


def test_refusals_say_why_and_who_and_are_recorded(rt: Runtime) -> None:
    gate = high_gate(rt, requested_by="chen")
    with pytest.raises(DecisionRefused, match=r"amara does not hold .*dana, gustav"):
        decisions.decide(
            rt, gate.id, person="amara", decision="approve", channel="slack", reason="test reason"
        )
    with pytest.raises(DecisionRefused, match="separation of duties"):
        decisions.decide(
            rt, gate.id, person="chen", decision="approve", channel="cli", reason="test reason"
        )
    with pytest.raises(DecisionRefused, match=r"not in people\.yaml"):
        decisions.decide(
            rt, gate.id, person="mallory", decision="approve", channel="web", reason="test reason"
        )
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    with pytest.raises(DecisionRefused, match="already decided"):
        decisions.decide(
            rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
        )
    decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    with pytest.raises(DecisionRefused, match="already approved"):
        decisions.decide(
            rt, gate.id, person="chen", decision="reject", channel="slack", reason="test reason"
        )
    recorded = refusals(rt)
    assert [r["refused"] for r in recorded] == [
        "no_right",
        "separation_of_duties",
        "unknown_person",
        "already_decided",
        "closed",
    ]
    assert recorded[0]["could_decide"] == ["dana", "gustav"]
    assert {r["person"] for r in recorded} == {"amara", "chen", "mallory", "dana"}
    assert rt.store.get_gate(gate.id).status == "approved"
    assert rt.store.verify().ok


def test_timeout_applies_each_tiers_action(
    rt: Runtime, clock: ManualClock, registry: FakeRegistry
) -> None:
    high = high_gate(rt)
    medium = decisions.open_finding_gate(rt, record_finding(rt, MEDIUM, "2"), "medium")
    assert decisions.expire_due_gates(rt) == []
    clock.advance(timedelta(hours=8))
    [expired_high] = decisions.expire_due_gates(rt)
    assert expired_high.id == high.id and expired_high.status == "expired"
    on_timeout = rt.config.catalog.tiers["high"].gate.on_timeout
    [action] = rt.store.list_actions(HIGH)
    assert (action.action, action.requested_by) == (on_timeout, "system")
    assert "champion" not in registry.aliases[HIGH] or registry.aliases[HIGH]["champion"] == "2"
    clock.advance(timedelta(days=2))
    [expired_medium] = decisions.expire_due_gates(rt)
    assert expired_medium.id == medium.id
    [accepted] = rt.store.list_actions(MEDIUM)
    assert accepted.action == "accept" and accepted.result["how"] == "timeout"
    assert rt.store.get_finding(medium.finding_id or "").status == "closed"
    [note] = [n for n in rt.store.list_notifications() if n.gate_id == medium.id]
    assert note.recipient == "#model-risk" and "timed out" in note.payload["text"]
    assert registry.aliases[MEDIUM]["champion"] == "2"  # accepting moves nothing
    assert decisions.expire_due_gates(rt) == []
    assert len(rt.store.list_actions()) == 2


def test_suspend_on_timeout_removes_alias_and_sets_kill_switch(
    database_url: str, tmp_path: Path, clock: ManualClock, registry: FakeRegistry
) -> None:
    from gate_world import example_config

    config = example_config()
    high = config.catalog.tiers["high"]
    policy = high.gate.model_copy(update={"on_timeout": "suspend"})
    tiers = config.catalog.tiers | {"high": high.model_copy(update={"gate": policy})}
    catalog = type(config.catalog)(**{**vars(config.catalog), "tiers": tiers})
    config = type(config)(catalog=catalog, inventory=config.inventory)
    rt = make_runtime(database_url, tmp_path, clock, registry, config)
    gate = high_gate(rt)
    assert gate.on_timeout == "suspend"
    clock.advance(timedelta(hours=9))
    decisions.expire_due_gates(rt)
    assert "champion" not in registry.aliases[HIGH]
    assert actions.is_suspended(registry.list_versions(HIGH)[2])


def test_a_decision_after_the_due_time_is_refused_and_expires_the_gate(
    rt: Runtime, clock: ManualClock
) -> None:
    gate = high_gate(rt)
    clock.advance(timedelta(hours=8, seconds=1))
    with pytest.raises(DecisionRefused, match="timed out"):
        decisions.decide(
            rt, gate.id, person="chen", decision="approve", channel="slack", reason="test reason"
        )
    assert rt.store.get_gate(gate.id).status == "expired"
    assert [r["refused"] for r in refusals(rt)] == ["timed_out"]
    assert len(rt.store.list_actions(HIGH)) == 1


def test_open_finding_gate_adopts_the_existing_gate(rt: Runtime) -> None:
    finding = record_finding(rt, HIGH, "3")
    first = decisions.open_finding_gate(rt, finding, "high", flow_run_id="flow-1")
    again = decisions.open_finding_gate(rt, finding, rt.config.catalog.tiers["high"])
    assert again == first and first.flow_run_id == "flow-1"
    assert len(rt.store.list_gates()) == 1
    assert first.context["control_id"] == "dataset-drift"


def test_closing_a_gate_stops_its_escalation(rt: Runtime) -> None:
    gate = high_gate(rt)
    escalation = rt.store.start_escalation(
        EscalationIn(finding_id=gate.finding_id, gate_id=gate.id, model=HIGH, tier="high")
    )
    decisions.decide(rt, gate.id, person="dana", decision="reject", channel="cli", reason="r")
    assert rt.store.get_escalation(escalation.id).status == "resolved"


def test_a_closed_gate_tells_its_subscribers_through_the_outbox(
    rt: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's domain event commits with the decision that closes it; a subscriber that
    fails has it retried (and never undoes the decision), one that finished is not asked again."""
    heard: list[tuple[str, str | None]] = []

    def flaky(event: DomainEvent) -> Handled:
        heard.append(("flaky", event.gate_id))
        if len(heard) == 1:
            raise RuntimeError("a broken subscriber never undoes a decision")
        return Handled(note="second time lucky")

    def steady(event: DomainEvent) -> Handled:
        heard.append(("steady", event.gate_id))
        return Handled()

    subscribers = [
        Subscriber("flaky", GATE_CLOSED, flaky),
        Subscriber("steady", GATE_CLOSED, steady),
    ]
    monkeypatch.setattr(rt, "subscribers", subscribers)
    gate = high_gate(rt)
    decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    assert rt.store.list_domain_events() == [] and heard == []  # still pending: no news
    closed = decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    assert closed.status == "approved" and rt.store.get_gate(gate.id).status == "approved"
    [event] = rt.store.list_domain_events(gate_id=gate.id)
    assert (event.kind, event.key, event.payload["status"]) == (
        "gate_decided",
        f"gate_decided:{gate.id}",
        "approved",
    )
    assert event.status == "pending" and event.attempts == 1  # retried: flaky failed
    flaky_answer = event.result["flaky"]
    assert flaky_answer["done"] is False and "RuntimeError" in flaky_answer["note"]
    assert event.result["steady"] == {"done": True, "note": ""}
    # queued in the decision's transaction: the same instant as the gate's own entry
    log = rt.store.events()
    queued = next(e for e in log if e.kind == "domain_event.queued")
    assert queued.at == next(e for e in log if e.kind == "gate.approved").at

    clock.advance(timedelta(minutes=1))
    assert events.dispatch(rt.store, subscribers, clock).handled == 1  # the ticker's turn
    [done] = rt.store.list_domain_events(gate_id=gate.id)
    assert done.status == "done" and done.result["flaky"]["note"] == "second time lucky"
    assert heard == [("flaky", gate.id), ("steady", gate.id), ("flaky", gate.id)]
    assert events.dispatch(rt.store, subscribers, clock).handled == 0  # once done, done
    assert rt.store.verify().ok


def test_an_expired_gate_tells_its_subscribers_too(
    rt: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard: list[str] = []
    monkeypatch.setattr(
        rt,
        "subscribers",
        [Subscriber("s", GATE_CLOSED, lambda e: heard.append(e.kind) or Handled())],
    )
    gate = high_gate(rt)
    assert gate.due_at is not None
    clock.set(gate.due_at + timedelta(seconds=1))
    [expired] = decisions.expire_due_gates(rt)
    assert expired.id == gate.id and heard == ["gate_expired"]
    [event] = rt.store.list_domain_events(status="done")
    assert event.key == f"gate_expired:{gate.id}"


# --------------------------------------------------------------------------- concurrency


def race(rt: Runtime, gate_id: str, moves: list[tuple[str, str]]) -> dict[str, object]:
    barrier = threading.Barrier(len(moves))
    results: dict[str, object] = {}

    def run(person: str, decision: str) -> None:
        barrier.wait()
        try:
            results[person] = decisions.decide(
                rt,
                gate_id,
                person=person,
                decision=decision,
                channel="slack",  # type: ignore[arg-type]
                reason="test reason",
            )
        except (DecisionRefused, StoreConflict) as exc:
            results[person] = exc

    threads = [threading.Thread(target=run, args=move) for move in moves]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_two_people_approving_a_two_person_gate_at_once_apply_once(rt: Runtime) -> None:
    for _ in range(3):
        gate = high_gate(rt)
        results = race(rt, gate.id, [("gustav", "approve"), ("dana", "approve")])
        assert all(isinstance(r, Gate) for r in results.values()), results
        assert rt.store.get_gate(gate.id).status == "approved"
        assert len(rt.store.decisions_for(gate.id)) == 2
        mine = [a for a in rt.store.list_actions(HIGH) if a.gate_id == gate.id]
        assert [a.action for a in mine] == ["accept"]


def test_the_last_two_approvers_racing_close_the_gate_once(rt: Runtime) -> None:
    gate = high_gate(rt)
    decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    # chen requested it (separation of duties): chen may not approve but may still reject
    results = race(rt, gate.id, [("dana", "approve"), ("chen", "reject")])
    won = [r for r in results.values() if isinstance(r, Gate)]
    lost = [r for r in results.values() if isinstance(r, DecisionRefused)]
    assert len(won) == 1 and len(lost) == 1, results
    closed = rt.store.get_gate(gate.id)
    assert closed.status in {"approved", "rejected"}
    assert len([a for a in rt.store.list_actions(HIGH) if a.gate_id == gate.id]) == 1
    assert [r["refused"] for r in refusals(rt)] == ["closed"]
    assert rt.store.verify().ok


# --------------------------------------------------------------------------- outside failures


def test_registry_down_queues_the_action_and_the_ticker_applies_it_once(
    rt: Runtime, registry: FakeRegistry, clock: ManualClock
) -> None:
    gate = high_gate(rt)
    registry.reachable = False
    with pytest.raises(UnreachableError):
        decisions.decide(
            rt, gate.id, person="dana", decision="reject", channel="cli", reason="test reason"
        )
    assert rt.store.get_gate(gate.id).status == "rejected"
    assert registry.aliases[HIGH]["champion"] == "3"  # no alias moved
    [queued] = rt.store.list_actions(HIGH)
    assert (queued.action, queued.status, queued.attempts) == ("rollback", "requested", 1)
    assert queued.next_attempt_at is not None and queued.next_attempt_at > clock.now()
    registry.reachable = True
    assert actions.apply_requested(rt) == []  # backing off: not due yet
    clock.advance(timedelta(minutes=1))
    [applied] = actions.apply_requested(rt)
    assert (applied.id, applied.action, applied.status) == (queued.id, "rollback", "applied")
    assert registry.aliases[HIGH]["champion"] == "2"
    clock.advance(timedelta(hours=1))
    assert actions.apply_requested(rt) == []
    assert len(rt.store.list_actions(HIGH)) == 1


def test_registry_down_past_the_tier_limit_dead_letters_and_escalates(
    rt: Runtime, registry: FakeRegistry, clock: ManualClock
) -> None:
    gate = high_gate(rt)
    registry.reachable = False
    with pytest.raises(UnreachableError):
        decisions.decide(
            rt, gate.id, person="dana", decision="reject", channel="cli", reason="test reason"
        )
    limit = rt.config.catalog.tiers["high"].gate.action_attempts
    for _ in range(limit):
        clock.advance(timedelta(hours=1))
        actions.apply_requested(rt)
    [dead] = rt.store.list_actions(HIGH)
    assert (dead.status, dead.attempts) == ("dead", limit)
    assert registry.aliases[HIGH]["champion"] == "3"
    risk = rt.config.catalog.tiers["high"].risk_channel
    [told] = [n for n in rt.store.list_notifications() if n.payload.get("kind") == "action_dead"]
    assert told.recipient == risk and gate.id in told.payload["text"]
    registry.reachable = True
    clock.advance(timedelta(hours=1))
    assert actions.apply_requested(rt) == []  # dead letters are not retried by themselves


def test_rollback_without_an_approved_version_falls_back_to_suspend(
    rt: Runtime, registry: FakeRegistry
) -> None:
    for version in ("1", "2"):
        registry.set_version_tags(HIGH, version, {"prodcontrol.approved": "false"})
    gate = high_gate(rt)
    decisions.decide(
        rt, gate.id, person="dana", decision="reject", channel="cli", reason="test reason"
    )
    [action] = rt.store.list_actions(HIGH)
    assert (action.action, action.status) == ("suspend", "applied")
    assert "no earlier version that passed its gate" in action.params["reason"]
    assert "champion" not in registry.aliases[HIGH]
    assert registry.versions[HIGH]["3"].ref.tags["prodcontrol.suspended"] == "true"
    assert actions.apply_requested(rt) == []


# --------------------------------------------------------------------------- by hand


def test_manual_suspend_and_rollback_need_the_right(rt: Runtime, registry: FakeRegistry) -> None:
    with pytest.raises(DecisionRefused, match="shutdown right"):
        actions.manual_suspend(rt, HIGH, person="amara", reason="panic")
    with pytest.raises(DecisionRefused, match="reason"):
        actions.manual_suspend(rt, HIGH, person="dana", reason=" ")
    assert len(refusals(rt, "suspend_refused")) == 2
    rolled = actions.manual_rollback(rt, HIGH, person="dana", reason="bad release")
    assert (rolled.status, registry.aliases[HIGH]["champion"]) == ("applied", "2")
    stopped = actions.manual_suspend(rt, HIGH, person="ivan", reason="incident 42")
    assert stopped.status == "applied" and "champion" not in registry.aliases[HIGH]
    again = actions.manual_suspend(rt, HIGH, person="ivan", reason="incident 42")
    assert again.status == "skipped" and "already stopped" in again.result["why"]


# --------------------------------------------------------------------------- waivers


def test_a_waiver_accepts_until_it_expires_then_the_finding_reopens(
    rt: Runtime, clock: ManualClock, registry: FakeRegistry
) -> None:
    finding = record_finding(rt, MEDIUM, "2")
    gate = decisions.open_finding_gate(rt, finding, "medium")
    with pytest.raises(DecisionRefused, match="exception"):
        waivers.grant(rt, finding.id, approver="emeka", reason="x", valid_for=timedelta(days=5))
    with pytest.raises(DecisionRefused, match="waiver_max"):
        waivers.grant(rt, finding.id, approver="dana", reason="x", valid_for=timedelta(days=31))
    with pytest.raises(DecisionRefused, match="needs a reason"):
        waivers.grant(rt, finding.id, approver="dana", reason="", valid_for=timedelta(days=5))
    assert len(refusals(rt, "waiver_grant_refused")) == 3

    waiver = waivers.grant(
        rt, finding.id, approver="dana", reason="known seasonal shift", valid_for=timedelta(days=10)
    )
    assert rt.store.get_finding(finding.id).status == "waived"
    assert rt.store.get_gate(gate.id).status == "approved"  # dana may approve it: answered
    kinds = [a.action for a in rt.store.list_actions(MEDIUM)]
    assert kinds == ["accept_with_waiver", "accept"]
    tags = registry.versions[MEDIUM]["2"].ref.tags
    assert tags["prodcontrol.waiver.dataset-drift"].startswith(waiver.expires_at.date().isoformat())

    tier = rt.config.catalog.tiers["medium"]
    controls = {c.id: c for c in rt.config.controls_for(rt.config.model(MEDIUM))}
    drifted = [decide_verdict("dataset-drift", 0.9, controls["dataset-drift"].thresholds)]

    def plan() -> bool:
        views = waivers.views(rt, MEDIUM)
        [p] = plan_findings(drifted, controls, tier, views, clock.now(), model_version="2")
        return p.waived

    assert plan()
    [listed] = waivers.list_waivers(rt)
    assert (listed.state, listed.days_left) == ("active", 10.0)
    clock.advance(timedelta(days=4))
    assert waivers.list_waivers(rt)[0].state == "expiring"
    assert waivers.reopen_expired(rt) == []
    clock.advance(timedelta(days=6))
    assert not plan()
    [reopened] = waivers.reopen_expired(rt)
    assert reopened.id == finding.id and reopened.status == "open"
    assert waivers.list_waivers(rt) == []
    assert [w.state for w in waivers.list_waivers(rt, include_inactive=True)] == ["expired"]
    assert rt.store.verify().ok


def test_later_findings_the_waiver_covers_reopen_when_it_expires(
    rt: Runtime, clock: ManualClock
) -> None:
    first = record_finding(rt, MEDIUM, "2")
    waivers.grant(rt, first.id, approver="dana", reason="seasonal", valid_for=timedelta(days=3))
    later = record_finding(rt, MEDIUM, "2", status="waived")  # a run while the waiver holds
    other = record_finding(rt, MEDIUM, "2", control="dq-schema", status="waived")
    assert [f.id for f in waivers.reopen_expired(rt)] == [other.id]  # nothing covers it
    clock.advance(timedelta(days=3))
    assert decisions.expire_due_gates(rt) == []
    assert {rt.store.get_finding(f.id).status for f in (first, later)} == {"open"}
    assert waivers.reopen_expired(rt) == []


def test_waivers_list_soonest_first_and_revoke(rt: Runtime) -> None:
    late = record_finding(rt, HIGH, "3")
    soon = record_finding(rt, HIGH, "3", control="prediction-drift")
    w_late = waivers.grant(rt, late.id, approver="gustav", reason="r", valid_for=timedelta(days=12))
    w_soon = waivers.grant(rt, soon.id, approver="hana", reason="r", valid_for=timedelta(days=2))
    assert [s.waiver.id for s in waivers.list_waivers(rt)] == [w_soon.id, w_late.id]
    assert [s.state for s in waivers.list_waivers(rt)] == ["expiring", "active"]
    with pytest.raises(DecisionRefused, match="exception"):
        waivers.revoke(rt, w_late.id, by="chen", reason="no")
    revoked = waivers.revoke(rt, w_late.id, by="hana", reason="drift is real")
    assert revoked.revoked_by == "hana"
    assert rt.store.get_finding(late.id).status == "open"
    views = {v.control_id: v.revoked for v in waivers.views(rt, HIGH)}
    assert views == {"dataset-drift": True, "prediction-drift": False}


def test_an_error_finding_cannot_be_waived(rt: Runtime) -> None:
    finding = record_finding(rt, HIGH, "3", verdict="error")
    with pytest.raises(DecisionRefused, match="cannot be waived"):
        waivers.grant(rt, finding.id, approver="gustav", reason="r", valid_for=timedelta(days=1))


# --------------------------------------------------------------------------- lifecycle


def test_promotion_needs_every_owner(rt: Runtime) -> None:
    missing = missing_owner_roles(rt.config.model("pricing-experiment"))
    assert missing
    with pytest.raises(DecisionRefused, match=f"no owner for {', '.join(missing)}"):
        lifecycle.request_promotion(
            rt, "pricing-experiment", "1", "production", requested_by="emeka", reason="ready"
        )
    [event] = refusals(rt, "promotion_refused")
    assert all(role in str(event["why"]) for role in missing)


def test_promotion_through_a_gate_moves_the_alias(rt: Runtime, registry: FakeRegistry) -> None:
    registry.add_version(HIGH, "4")
    with pytest.raises(DecisionRefused, match="no finished control run on version 4"):
        lifecycle.request_promotion(rt, HIGH, "4", "production", requested_by="chen", reason="r")
    record_finding(rt, HIGH, "4")
    with pytest.raises(DecisionRefused, match="dataset-drift=fail"):
        lifecycle.request_promotion(rt, HIGH, "4", "production", requested_by="chen", reason="r")
    passing_run(rt, HIGH, "4")
    gate = lifecycle.request_promotion(
        rt, HIGH, "4", "production", requested_by="dana", reason="retrained on Q3"
    )
    again = lifecycle.request_promotion(
        rt, HIGH, "4", "production", requested_by="dana", reason="retrained on Q3"
    )
    assert again == gate and (gate.kind, gate.right, gate.required_approvals) == (
        "promotion",
        "deploy",
        2,
    )
    with pytest.raises(DecisionRefused, match="separation of duties"):
        decisions.decide(
            rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
        )
    with pytest.raises(DecisionRefused, match="deploy"):
        decisions.decide(
            rt, gate.id, person="chen", decision="approve", channel="cli", reason="test reason"
        )
    decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    assert registry.aliases[HIGH]["champion"] == "3"
    # the two-person rule needs a second deploy holder who did not request it
    assert decisions.who_could_decide(rt, rt.store.get_gate(gate.id)) == []


def test_promotion_on_a_single_approver_tier(rt: Runtime, registry: FakeRegistry) -> None:
    registry.add_version(MEDIUM, "3")
    passing_run(rt, MEDIUM, "3")
    gate = lifecycle.request_promotion(
        rt, MEDIUM, "3", "pilot", requested_by="emeka", reason="new features"
    )
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    assert registry.aliases[MEDIUM]["champion"] == "3"
    tags = registry.versions[MEDIUM]["3"].ref.tags
    assert (tags["prodcontrol.stage"], tags["prodcontrol.approved"]) == ("pilot", "true")
    assert lifecycle.effective_stage(rt, MEDIUM) == "pilot"
    [action] = rt.store.list_actions(MEDIUM)
    assert (action.action, action.result["from_version"]) == ("promote", "2")
    with pytest.raises(DecisionRefused, match="approved promotion gate"):
        actions.promote(rt, high_gate(rt))


def test_retire_removes_aliases_stops_controls_keeps_evidence(
    rt: Runtime, registry: FakeRegistry
) -> None:
    record_finding(rt, MEDIUM, "2")
    gate = lifecycle.request_retirement(rt, MEDIUM, requested_by="emeka", reason="replaced")
    assert (gate.kind, gate.right, gate.model_version) == ("retire", "shutdown", "2")
    assert lifecycle.is_controlled(rt, MEDIUM)
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    assert registry.aliases[MEDIUM] == {}
    assert all(v.tags["prodcontrol.retired"] == "true" for v in registry.list_versions(MEDIUM))
    assert lifecycle.effective_stage(rt, MEDIUM) == "retired"
    assert not lifecycle.is_controlled(rt, MEDIUM)
    assert len(rt.store.list_runs(MEDIUM)) == 1 and rt.store.verify().ok
    with pytest.raises(DecisionRefused, match="already retired"):
        lifecycle.request_retirement(rt, MEDIUM, requested_by="emeka", reason="again")
