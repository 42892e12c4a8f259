"""The gate operator defers on its trigger; the trigger resumes it on a decision or a timeout.

The trigger's ``run()`` generator is driven with ``asyncio`` as the triggerer would drive it,
against the SQLite evidence store; decisions and timeouts go through the core (``decide``,
``expire_due_gates``), and their actions land in the real MLflow server.
"""

from __future__ import annotations

import asyncio
import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.triggers.base import BaseTrigger
from prodcontrol.control.gates.decisions import decide, open_finding_gate
from prodcontrol.testing import ManualClock

from af_world import hours_ago, record_finding, runtime, seed_model
from prodcontrol_airflow.gate import ProdControlGateOperator
from prodcontrol_airflow.triggers import ProdControlGateTrigger

CONTEXT: Any = {
    "ti": SimpleNamespace(
        dag_id="prodcontrol_tier_x", run_id="manual__1", task_id="model.gate", map_index=0
    )
}


def rebuilt(trigger: BaseTrigger) -> BaseTrigger:
    """The trigger as the triggerer process re-creates it from ``serialize()``."""
    classpath, kwargs = trigger.serialize()
    module, name = classpath.rsplit(".", 1)
    made: BaseTrigger = getattr(importlib.import_module(module), name)(**kwargs)
    return made


async def first_event(trigger: BaseTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("the trigger ended without an event")


def test_gate_defers_and_resumes_when_a_decision_is_written(mlflow_server: str) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")  # medium tier: one approver
    gate_op = ProdControlGateOperator(
        task_id="gate", check_result={"run_id": finding.run_id}, poll_interval=0.05
    )

    with pytest.raises(TaskDeferred) as deferred:
        gate_op.execute(CONTEXT)

    assert deferred.value.method_name == "execute_complete"
    trigger = rebuilt(deferred.value.trigger)
    assert isinstance(trigger, ProdControlGateTrigger)
    (gate_id,) = trigger.gate_ids
    gate = rt.store.get_gate(gate_id)
    assert (gate.finding_id, gate.status, gate.required_approvals) == (finding.id, "pending", 1)
    assert gate.flow_run_id == "airflow:prodcontrol_tier_x/manual__1/model.gate[0]"
    with pytest.raises(TaskDeferred) as again:  # a retried task adopts the pending gate
        gate_op.execute(CONTEXT)
    assert again.value.trigger.gate_ids == [gate_id]

    async def wait_then_decide() -> dict[str, Any]:
        waiting = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # pending: the trigger keeps polling, no event
        await asyncio.to_thread(
            decide,
            runtime(),
            gate_id,
            person="emeka",
            decision="approve",
            channel="slack",
            reason="drift explained by the new branch",
        )
        return await asyncio.wait_for(waiting, timeout=30)

    event = asyncio.run(wait_then_decide())

    assert event == {"status": "decided", "gates": {gate_id: "approved"}}
    result = gate_op.execute_complete(CONTEXT, event, **deferred.value.kwargs)
    (row,) = result["gates"]
    assert (row["status"], row["action"], row["action_status"]) == ("approved", "accept", "applied")
    assert row["deciders"] == ["emeka:approve:slack"]
    # the outcome was applied once, by decide(); resuming did not apply it again
    assert [
        a.action for a in rt.store.list_actions("credit-limit-regressor") if a.gate_id == gate_id
    ] == ["accept"]
    # once decided the finding is closed: a re-run of the task has nothing left to wait on
    assert gate_op.execute(CONTEXT) == {"status": "no_gate", "gates": []}


def test_gate_without_a_decision_times_out_into_the_tiers_action(mlflow_server: str) -> None:
    client = seed_model(mlflow_server, "fraud-detector")
    # high tier: two-person gate, 8 h timeout, on_timeout rollback. Opened 9 h ago:
    past = runtime(clock=ManualClock(hours_ago(9)))
    finding = record_finding(past, "fraud-detector")
    gate = open_finding_gate(past, finding, "high")
    assert gate.due_at is not None and gate.due_at < hours_ago(0.5)
    trigger = ProdControlGateTrigger(
        gate_ids=[gate.id],
        database_url=runtime().settings.resolved_database_url,
        poll_interval=0.05,
    )

    event = asyncio.run(asyncio.wait_for(first_event(rebuilt(trigger)), timeout=30))

    assert event == {"status": "due", "gates": {gate.id: "pending"}, "overdue": [gate.id]}
    gate_op = ProdControlGateOperator(task_id="gate", gate_ids=[gate.id])
    with pytest.raises(AirflowException, match=rf"{gate.id} expired -> rollback"):
        gate_op.execute_complete(CONTEXT, event, gate_ids=[gate.id])
    rt = runtime()
    assert rt.store.get_gate(gate.id).status == "expired"
    (action,) = [a for a in rt.store.list_actions("fraud-detector") if a.gate_id == gate.id]
    assert (action.action, action.status, action.requested_by) == ("rollback", "applied", "system")
    assert client.get_model_version_by_alias("fraud-detector", "champion").version == "1"


def test_trigger_reports_a_gate_that_does_not_exist() -> None:
    trigger = ProdControlGateTrigger(
        gate_ids=["gate-nowhere"], database_url=runtime().settings.resolved_database_url
    )

    event = asyncio.run(asyncio.wait_for(first_event(trigger), timeout=30))

    assert event["status"] == "error"
    assert "gate-nowhere" in event["message"]
    with pytest.raises(AirflowException, match="gate-nowhere"):
        ProdControlGateOperator(task_id="gate", gate_ids=["gate-nowhere"]).execute_complete(
            CONTEXT, event, gate_ids=["gate-nowhere"]
        )
