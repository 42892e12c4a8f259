"""Gate outcomes and actions against a REAL MLflow server (the session's ``mlflow server``).

Each test registers its own models (a unique name that the inventory maps to an example entry),
so it never disturbs the seeded example models other tests read.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from gate_world import (
    TickingClock,
    example_config,
    make_runtime,
    passing_run,
    record_finding,
)

from prodcontrol.adapters.mlflow import MlflowAdapter
from prodcontrol.catalog.config import Config
from prodcontrol.control.escalation import escalation
from prodcontrol.control.gates import actions, decisions
from prodcontrol.control.lifecycle import lifecycle
from prodcontrol.control.runs import checks
from prodcontrol.engine.verdicts import decide as decide_verdict
from prodcontrol.runtime import Runtime

SERVING = "serving-version-approved"


def renamed(config: Config, **names: str) -> Config:
    """The example config with extra models: ``new_name=example_name``."""
    models = dict(config.inventory.models)
    for new, old in names.items():
        models[new] = models[old].model_copy(update={"name": new})
    inventory = dataclasses.replace(config.inventory, models=models)
    return dataclasses.replace(config, inventory=inventory)


def register(adapter: MlflowAdapter, model: str, count: int, serving: str) -> None:
    """``count`` versions (all but the newest approved), ``serving`` behind ``champion``."""
    client: Any = adapter.client
    client.create_registered_model(model)
    experiment = client.get_experiment_by_name("gate-actions") or client.get_experiment(
        client.create_experiment("gate-actions")
    )
    for number in range(1, count + 1):
        run = client.create_run(experiment.experiment_id)
        tags = {"prodcontrol.approved": "true"} if number < count else {}
        client.create_model_version(
            model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
        )
    client.set_registered_model_alias(model, "champion", serving)
    client.set_registered_model_alias(model, "challenger", str(count))


@pytest.fixture
def world(mlflow_uri: str, sqlite_url: str, tmp_path: Path) -> tuple[Runtime, str, str]:
    suffix = uuid.uuid4().hex[:8]
    high, medium = f"fraud-detector-{suffix}", f"credit-limit-regressor-{suffix}"
    config = renamed(example_config(), **{high: "fraud-detector", medium: "credit-limit-regressor"})
    adapter = MlflowAdapter(mlflow_uri)
    register(adapter, high, 3, serving="3")
    register(adapter, medium, 3, serving="2")
    rt = make_runtime(sqlite_url, tmp_path, TickingClock(), adapter, config)
    return rt, high, medium


def serving(rt: Runtime, model: str) -> str | None:
    found = [v.version for v in rt.registry.list_versions(model) if "champion" in v.aliases]
    return found[0] if found else None


def tags_of(rt: Runtime, model: str, version: str) -> dict[str, str]:
    [ref] = [v for v in rt.registry.list_versions(model) if v.version == version]
    return ref.tags


def test_reject_rolls_back_in_mlflow_once(world: tuple[Runtime, str, str]) -> None:
    rt, high, _ = world
    gate = decisions.open_finding_gate(rt, record_finding(rt, high, "3"), "high")
    decisions.decide(
        rt, gate.id, person="gustav", decision="approve", channel="cli", reason="test reason"
    )
    closed = decisions.decide(
        rt, gate.id, person="dana", decision="reject", channel="slack", reason="drift is real"
    )
    assert closed.status == "rejected"
    assert serving(rt, high) == "2"
    withdrawn = tags_of(rt, high, "3")
    assert (withdrawn["prodcontrol.rolled_back"], withdrawn["prodcontrol.approved"]) == (
        "true",
        "false",
    )
    target = tags_of(rt, high, "2")
    assert (target["prodcontrol.last_action"], target["prodcontrol.last_action_gate"]) == (
        "rollback",
        gate.id,
    )
    assert target["prodcontrol.last_action_by"] == "dana"
    [action] = rt.store.list_actions(high)
    assert actions.apply_gate_outcome(rt, rt.store.get_gate(gate.id)) == action
    assert serving(rt, high) == "2" and len(rt.store.list_actions(high)) == 1


def test_suspend_removes_the_alias_and_sets_the_kill_switch(
    world: tuple[Runtime, str, str],
) -> None:
    rt, high, _ = world
    action = actions.manual_suspend(rt, high, person="dana", reason="incident 42")
    assert action.status == "applied" and serving(rt, high) is None
    [ref] = [v for v in rt.registry.list_versions(high) if v.version == "3"]
    assert actions.is_suspended(ref)
    again = actions.manual_suspend(rt, high, person="dana", reason="incident 42")
    assert again.status == "skipped"


def test_timeout_applies_the_tier_action_in_mlflow(world: tuple[Runtime, str, str]) -> None:
    from datetime import timedelta

    rt, high, _ = world
    gate = decisions.open_finding_gate(rt, record_finding(rt, high, "3"), "high")
    rt.clock.advance(timedelta(hours=8))  # type: ignore[attr-defined]
    [expired] = decisions.expire_due_gates(rt)
    assert expired.id == gate.id
    on_timeout = rt.config.catalog.tiers["high"].gate.on_timeout
    [action] = rt.store.list_actions(high)
    assert (action.action, action.status) == (on_timeout, "applied")
    expected = {"rollback": "2", "suspend": None, "accept": "3"}[on_timeout]
    assert serving(rt, high) == expected


def test_promotion_gate_moves_the_alias(world: tuple[Runtime, str, str]) -> None:
    rt, _, medium = world
    passing_run(rt, medium, "3")
    gate = lifecycle.request_promotion(
        rt, medium, "3", "production", requested_by="emeka", reason="retrained"
    )
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    assert serving(rt, medium) == "3"
    tags = tags_of(rt, medium, "3")
    assert (tags["prodcontrol.approved"], tags["prodcontrol.stage"]) == ("true", "production")
    assert "prodcontrol.approved_at" in tags


def test_retire_removes_every_alias(world: tuple[Runtime, str, str]) -> None:
    rt, _, medium = world
    gate = lifecycle.request_retirement(rt, medium, requested_by="emeka", reason="replaced")
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="test reason"
    )
    versions = rt.registry.list_versions(medium)
    assert all(not v.aliases for v in versions)
    assert {v.tags["prodcontrol.retired"] for v in versions} == {"true"}
    [action] = rt.store.list_actions(medium)
    assert action.result["aliases_removed"] == ["challenger", "champion"]
    assert not lifecycle.is_controlled(rt, medium)


def closed_port_adapter() -> MlflowAdapter:
    """MLflow going away, as a closed port (a real refused connection): restarting the
    session's server would cost half a minute and disturb the tests sharing it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return MlflowAdapter(f"http://127.0.0.1:{port}")


def test_mlflow_down_during_a_timeout_rollback_then_back_applies_it_once(
    world: tuple[Runtime, str, str],
) -> None:
    """Today's code recorded the rollback ``failed`` and nothing ever retried it."""
    rt, high, _ = world
    gate = decisions.open_finding_gate(rt, record_finding(rt, high, "3"), "high")
    assert rt.config.catalog.tiers["high"].gate.on_timeout == "rollback"
    live = rt.registry
    rt.registry = closed_port_adapter()  # type: ignore[misc]
    rt.clock.advance(timedelta(hours=8))  # type: ignore[attr-defined]
    [expired] = decisions.expire_due_gates(rt)  # the ticker's job: no exception escapes it
    assert (expired.id, expired.status) == (gate.id, "expired")
    [queued] = rt.store.list_actions(high)
    assert (queued.action, queued.status, queued.attempts) == ("rollback", "requested", 1)
    rt.registry = live  # type: ignore[misc]
    assert serving(rt, high) == "3"  # nothing moved while MLflow was down
    rt.clock.advance(timedelta(minutes=2))  # type: ignore[attr-defined]
    escalation.tick(rt)
    [applied] = rt.store.list_actions(high)
    assert (applied.id, applied.status, applied.attempts) == (queued.id, "applied", 2)
    assert serving(rt, high) == "2"
    rt.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    escalation.tick(rt)
    assert [a.status for a in rt.store.list_actions(high)] == ["applied"]
    assert serving(rt, high) == "2"


def test_a_stale_gate_does_not_roll_back_a_version_promoted_by_hand(
    world: tuple[Runtime, str, str],
) -> None:
    """A gate on v2 rejected after someone moved the alias to v3 in MLflow must not roll v3
    back: the alias stays, the action is skipped with the reason, the risk channel hears."""
    rt, _, medium = world  # medium serves v2; v3 exists
    gate = decisions.open_finding_gate(rt, record_finding(rt, medium, "2"), "medium")
    rt.registry.set_alias(medium, "champion", "3")  # the manual promotion, outside the gates
    decisions.decide(
        rt, gate.id, person="dana", decision="reject", channel="cli", reason="drift is real"
    )
    assert serving(rt, medium) == "3"  # untouched
    [action] = rt.store.list_actions(medium)
    assert (action.action, action.status, action.model_version) == ("rollback", "skipped", "2")
    assert "points at version 3 now, not at version 2" in action.result["why"]
    risk = rt.config.catalog.tiers["medium"].risk_channel
    told = [n for n in rt.store.list_notifications() if n.payload.get("kind") == "action_skipped"]
    assert [n.recipient for n in told] == [risk]
    assert "prodcontrol.rolled_back" not in tags_of(rt, medium, "3")


def test_an_alias_moved_by_hand_to_an_unapproved_version_fails_serving_version_approved(
    world: tuple[Runtime, str, str],
) -> None:
    """No control noticed a serving alias pointing at a version nobody approved."""
    rt, high, medium = world  # high serves v3 (never approved); medium serves v2 (approved)
    control = next(c for c in rt.config.catalog.controls.values() if c.id == SERVING)
    for tier in rt.config.catalog.tiers.values():
        assert SERVING in tier.controls  # on every tier
    unapproved = checks.measure_control(rt, checks.open_run(rt, high, trigger="test"), SERVING)
    assert unapproved.value == 1.0 and "outside the gates" in unapproved.details["approved_by"]
    assert decide_verdict(SERVING, unapproved.value, control.thresholds).verdict == "fail"
    approved = checks.measure_control(rt, checks.open_run(rt, medium, trigger="test"), SERVING)
    assert (approved.value, approved.details["approved_by"]) == (0.0, "tag")
    # moved by hand to v3 of medium: fails until a promotion gate approves v3
    rt.registry.set_alias(medium, "champion", "3")
    moved = checks.measure_control(rt, checks.open_run(rt, medium, trigger="test"), SERVING)
    assert moved.value == 1.0
    passing_run(rt, medium, "3")
    gate = lifecycle.request_promotion(
        rt, medium, "3", "production", requested_by="emeka", reason="retrained"
    )
    decisions.decide(
        rt, gate.id, person="dana", decision="approve", channel="cli", reason="validated"
    )
    promoted = checks.measure_control(rt, checks.open_run(rt, medium, trigger="test"), SERVING)
    assert promoted.value == 0.0
