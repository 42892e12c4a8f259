"""A prodcontrol gate decided in Airflow's Required Actions, on Airflow 3.3.2's own machinery.

``dag.test()`` runs the example DAG ``prodcontrol_hitl_gate`` for real: the HITL task writes its
request to the Airflow DB and parks in ``awaiting_input``. The answer comes the way the UI
sends it: ``PATCH .../hitlDetails`` on Airflow's REST API (in-process, simple auth manager),
signed in as an Airflow user; dag.test() then resumes the task, which decides through
prodcontrol's rules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prodcontrol.control.gates.decisions import decide, open_finding_gate

from af_world import record_finding, runtime, seed_model

DAG_ID = "prodcontrol_hitl_gate"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def api(airflow_db: None) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app("core")) as client:
        yield client


def token(api: TestClient, user: str) -> dict[str, str]:
    answer = api.post("/auth/token", json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def awaiting(run_id: str | None = None) -> list[tuple[str, str, int]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter(
            TaskInstance.dag_id == DAG_ID, TaskInstance.state == "awaiting_input"
        )
        return [
            (ti.run_id, ti.task_id, ti.map_index)
            for ti in rows
            if run_id is None or ti.run_id == run_id
        ]


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


Step = tuple[str, str, str, str]  # (task expected, Airflow user, option, reason)


def run_dag(api: TestClient, gate_id: str, steps: list[Step]) -> tuple[Any, list[Any]]:
    """dag.test() of the example DAG (in this thread: the task runner needs the main thread's
    signals) while a second thread answers each HITL request as it appears, in the UI's way."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    dag = bag.get_dag(DAG_ID)
    assert dag is not None, bag.import_errors
    answers: list[Any] = []
    seen = set(awaiting())

    def respond() -> None:
        for expected, user, option, reason in steps:
            fresh = wait_for("an HITL request", lambda: sorted(set(awaiting()) - seen))
            request = fresh[0]
            seen.add(request)
            answers.append((request[1] == expected, answer(api, user, request, option, reason)))
            if answers[-1][1].status_code != 200:  # refused: the same request waits on
                seen.discard(request)

    responder = threading.Thread(target=respond, daemon=True)
    responder.start()
    dag_run = dag.test(run_conf={"gate_id": gate_id})
    responder.join(timeout=60)
    return dag_run, answers


def answer(
    api: TestClient, user: str, request: tuple[str, str, int], option: str, reason: str
) -> Any:
    run_id, task_id, map_index = request
    path = (
        f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"
    )
    detail = api.get(path, headers=token(api, user))
    assert detail.status_code == 200, detail.text
    params = {k: v.get("value") for k, v in (detail.json().get("params") or {}).items()}
    return api.patch(
        path,
        headers=token(api, user),
        json={"chosen_options": [option], "params_input": params | {"reason": reason}},
    )


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_two_person_gate_takes_two_answers_from_two_people_in_airflow(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "fraud-detector")
    rt = runtime()
    finding = record_finding(rt, "fraud-detector")  # high tier: two people, separation of duties
    gate = open_finding_gate(rt, finding, "high", None, requested_by="chen")
    dag_run, answers = run_dag(
        api,
        gate.id,
        [
            # the requester is not a respondent: Airflow itself refuses his answer
            ("approval_1", "chen", "Approve", "looks fine to me"),
            ("approval_1", "dana", "Approve", "drift explained by the campaign"),
            ("approval_2", "gustav", "Approve", "second pair of eyes: agreed"),
        ],
    )
    assert [(right_task, a.status_code) for right_task, a in answers] == [
        (True, 403),
        (True, 200),
        (True, 200),
    ]
    closed = rt.store.get_gate(gate.id)
    assert closed.status == "approved"
    deciders = [(d.person, d.decision, d.channel) for d in rt.store.decisions_for(gate.id)]
    assert deciders == [("dana", "approve", "airflow"), ("gustav", "approve", "airflow")]
    assert set(states(dag_run).values()) == {"success"}


def test_a_gate_decided_elsewhere_asks_nothing_in_airflow(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")  # medium tier: one approver
    gate = open_finding_gate(rt, finding, "medium", None)
    decide(rt, gate.id, person="dana", decision="approve", channel="cli", reason="known shift")
    dag_run, answers = run_dag(api, gate.id, [])
    assert answers == [] and set(states(dag_run).values()) == {"success"}
    assert awaiting(dag_run.run_id) == []


def test_a_stranger_decides_nothing_and_a_waiver_is_asked_for_in_airflow(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")
    gate = open_finding_gate(rt, finding, "medium", None)
    dag_run, answers = run_dag(
        api,
        gate.id,
        [
            ("approval_1", "stranger", "Approve", "why not"),  # not assigned: refused
            ("approval_1", "dana", "Request waiver", "seasonal, retrain scheduled"),
        ],
    )
    assert [a.status_code for _, a in answers] == [403, 200]
    assert rt.store.get_gate(gate.id).status == "approved"
    waivers = rt.store.list_waivers(model="credit-limit-regressor")
    waived = [w for w in waivers if w.finding_id == finding.id]
    assert [w.approver for w in waived] == ["dana"]
    assert set(states(dag_run).values()) == {"success"}
