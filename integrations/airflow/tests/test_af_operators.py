"""The check and action operators run through ``dag.test()`` on the shipped example DAGs.

Against a real ``mlflow server`` (session fixture) and the SQLite evidence store the operators
read from ``PRODCONTROL_DATABASE_URL``; the Airflow metadata DB is SQLite too.
"""

from __future__ import annotations

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import DagRunState

from af_world import record_finding, runtime, seed_model
from conftest import EXAMPLES

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture(scope="module")
def bag() -> DagBag:
    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    return bag


def test_low_tier_dag_checks_its_model_and_pushes_the_verdict_table(
    bag: DagBag, mlflow_server: str
) -> None:
    seed_model(mlflow_server, "churn-classifier")
    dag = bag.dags["prodcontrol_tier_low"]

    run = dag.test()

    check = run.get_task_instance("model.check", map_index=0)
    assert check is not None
    table = check.xcom_pull(task_ids="model.check", map_indexes=0)
    assert table["model"] == "churn-classifier"
    assert table["model_version"] == "2"  # what `champion` serves in MLflow
    assert table["tier"] == "low"
    rt = runtime()
    recorded = rt.store.get_run(table["run_id"])
    assert recorded.trigger == "airflow"
    assert recorded.status in ("succeeded", "failed")  # every control measured, none errored
    controls = {row["control_id"]: row["verdict"] for row in table["verdicts"]}
    assert set(controls) == set(rt.config.tier(rt.config.model("churn-classifier")).controls)
    assert "error" not in controls.values()
    assert len(rt.store.verdicts_for(recorded.id)) == len(controls)
    # a low tier only notifies: nothing gates, nothing blocks, so both tasks succeed
    assert run.state == DagRunState.SUCCESS
    gate = run.get_task_instance("model.gate", map_index=0)
    assert gate.xcom_pull(task_ids="model.gate", map_indexes=0)["status"] == "no_gate"


def test_manual_action_dag_rolls_back_in_mlflow(bag: DagBag, mlflow_server: str) -> None:
    client = seed_model(mlflow_server, "fraud-detector")
    assert client.get_model_version_by_alias("fraud-detector", "champion").version == "2"
    dag = bag.dags["prodcontrol_manual_action"]

    run = dag.test(
        run_conf={
            "model": "fraud-detector",
            "action": "rollback",
            "person": "dana",  # operating_risk: holds the shutdown right on every tier
            "reason": "drift confirmed by the owner",
        }
    )

    assert run.state == DagRunState.SUCCESS
    assert client.get_model_version_by_alias("fraud-detector", "champion").version == "1"
    withdrawn = client.get_model_version("fraud-detector", "2").tags
    assert withdrawn["prodcontrol.rolled_back"] == "true"
    action = run.get_task_instance("action").xcom_pull(task_ids="action")
    assert action["action"] == "rollback"
    assert action["status"] == "applied"
    assert action["requested_by"] == "dana"
    recorded = [a for a in runtime().store.list_actions("fraud-detector") if a.id == action["id"]]
    assert recorded and recorded[0].result["to_version"] == "1"


def test_refused_action_fails_the_task_and_escalates(bag: DagBag, mlflow_server: str) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    before = len(rt.store.list_escalations())
    dag = bag.dags["prodcontrol_manual_action"]

    run = dag.test(
        run_conf={
            "model": "credit-limit-regressor",
            "action": "suspend",
            "person": "amara",  # no shutdown right for this model
            "reason": "I want it off",
        }
    )

    assert run.state == DagRunState.FAILED
    events = [e for e in rt.store.events() if e.kind == "suspend_refused"]
    assert events and events[-1].payload["person"] == "amara"
    # the notifier recorded the failed task as an error verdict and escalated it to the owners
    escalations = rt.store.list_escalations()
    assert len(escalations) == before + 1
    finding = rt.store.get_finding(escalations[-1].finding_id or "")
    assert (finding.model, finding.control_id, finding.verdict) == (
        "credit-limit-regressor",
        "airflow-task",
        "error",
    )
    assert rt.store.list_notifications(status="pending")


def test_escalation_dag_sends_the_outbox(bag: DagBag, mlflow_server: str) -> None:
    from prodcontrol.control.escalation import escalation

    rt = runtime()
    finding = record_finding(rt, "churn-classifier")
    escalation.after_run(rt, finding.run_id)
    queued = [n for n in rt.store.list_notifications("pending") if n.finding_id == finding.id]
    assert queued

    run = bag.dags["prodcontrol_escalations"].test()

    assert run.state == DagRunState.SUCCESS
    sent = {n.id for n in rt.store.list_notifications("sent")}
    assert {n.id for n in queued} <= sent
    assert "churn-classifier" in rt.settings.outbox_file.read_text(encoding="utf-8")
