"""A prodcontrol gate decided in Airflow's Required Actions, on Airflow 3.3.2's own machinery.

``dag.test()`` runs the example DAG ``prodcontrol_hitl_gate`` for real: the HITL task writes its
request to the Airflow DB and defers on ``ProdControlHITLTrigger`` (dag.test() runs the trigger
in line). An answer comes the way the UI sends it: ``PATCH .../hitlDetails`` on Airflow's REST
API (in-process, simple auth manager), signed in as an Airflow user; the task then resumes and
decides through prodcontrol's rules. A decision elsewhere comes the way people make it: the
``prodcontrol`` CLI in its own process with the person's token, or a signed Slack modal
submission to prodcontrol's web app; the trigger then answers the Airflow request itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prodcontrol.control.gates.decisions import decide, open_finding_gate
from prodcontrol.testing import ManualClock
from pydantic import SecretStr

from af_world import (
    SLACK_SECRET,
    record_finding,
    runtime,
    seed_model,
    slack_signed,
    slack_submission,
    token_for,
)
from prodcontrol_airflow.hitl_gate import GATE_PARAM

DAG_ID = "prodcontrol_hitl_gate"
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def api(airflow_db: None, triggerer_comms: None) -> Iterator[TestClient]:
    from airflow.api_fastapi.app import create_app

    with TestClient(create_app("core")) as client:
        yield client


@pytest.fixture(scope="module")
def triggerer_comms() -> Iterator[None]:
    """dag.test() runs a deferred task's trigger in line, under the *task* supervisor, which on
    Airflow 3.3 no longer serves a trigger's HITL reads and writes (only the triggerer's
    supervisor does, ``TriggerRunnerSupervisor._handle_request``). This serves those two
    messages the triggerer's way, through the same in-process Execution API client; everything
    else is dag.test()'s own."""
    import airflow.sdk.definitions.dag as dag_module
    from airflow.jobs.triggerer_job_runner import HITLDetailResponseResult
    from airflow.sdk.execution_time.comms import GetHITLDetailResponse, UpdateHITLDetail
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor

    class TriggererLikeSupervisor(InProcessTestSupervisor):
        def _handle_request(self, msg: Any, log: Any, req_id: int) -> None:
            if isinstance(msg, UpdateHITLDetail):
                got = self.client.hitl.update_response(
                    ti_id=msg.ti_id,
                    chosen_options=msg.chosen_options,
                    params_input=msg.params_input,
                )
            elif isinstance(msg, GetHITLDetailResponse):
                got = self.client.hitl.get_detail_response(ti_id=msg.ti_id)
            else:
                super()._handle_request(msg, log, req_id)
                return
            self.send_msg(HITLDetailResponseResult.from_api_response(response=got), req_id)

    def run_inline_trigger(trigger: Any, task_sdk_ti: Any) -> Any:
        return TriggererLikeSupervisor.run_trigger_in_process(trigger=trigger, ti=task_sdk_ti)

    original = dag_module._run_inline_trigger
    dag_module._run_inline_trigger = run_inline_trigger
    try:
        yield
    finally:
        dag_module._run_inline_trigger = original


def token(api: TestClient, user: str) -> dict[str, str]:
    answer = api.post("/auth/token", json={"username": user, "password": f"pw-{user}"})
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


Request = tuple[str, str, int]  # (run_id, task_id, map_index) of a waiting HITL request


def asking(run_id: str | None = None) -> list[Request]:
    """The example DAG's HITL requests still unanswered (their tasks wait, deferred)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .filter(TaskInstance.dag_id == DAG_ID, HITLDetail.responded_at.is_(None))
        )
        return [
            (ti.run_id, ti.task_id, ti.map_index)
            for ti in rows
            if str(ti.state) not in FINISHED and (run_id is None or ti.run_id == run_id)
        ]


FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}


def requests(run_id: str) -> dict[str, dict[str, Any]]:
    """Each HITL request of the run as Airflow recorded it (what Required Actions shows)."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(TaskInstance, HITLDetail)
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .filter(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == run_id)
        )
        return {
            ti.task_id: {
                "options": list(detail.options),
                "chosen": list(detail.chosen_options or []),
                "by": detail.responded_by,
                "reason": (detail.params_input or {}).get("reason"),
                "assigned": sorted(u["id"] for u in detail.assigned_users),
            }
            for ti, detail in rows
        }


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


# what a step does to a waiting request: (its result, whether the request is settled by it)
Act = Callable[[TestClient, Request], tuple[Any, bool]]
Step = tuple[str, Act]  # (task expected to ask, what happens)


def in_airflow(user: str, option: str, reason: str) -> Act:
    """``user`` answers in Required Actions (the UI's PATCH); a refusal leaves it waiting."""

    def act(api: TestClient, request: Request) -> tuple[Any, bool]:
        status = answer(api, user, request, option, reason).status_code
        return status, status == 200

    return act


def run_dag(api: TestClient, gate_id: str, steps: list[Step]) -> tuple[Any, list[Any]]:
    """dag.test() of the example DAG (in this thread: the task runner needs the main thread's
    signals) while a second thread acts on each HITL request as it appears."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    dag = bag.get_dag(DAG_ID)
    assert dag is not None, bag.import_errors
    results: list[Any] = []
    seen = set(asking())

    def respond() -> None:
        for expected, act in steps:
            fresh = wait_for("an HITL request", lambda: sorted(set(asking()) - seen))
            request = fresh[0]
            seen.add(request)
            result, settled = act(api, request)
            results.append((request[1] == expected, result))
            if not settled:  # refused: the same request waits on
                seen.discard(request)

    responder = threading.Thread(target=respond, daemon=True)
    responder.start()
    dag_run = dag.test(run_conf={"gate_id": gate_id})
    responder.join(timeout=60)
    return dag_run, results


def answer(api: TestClient, user: str, request: Request, option: str, reason: str) -> Any:
    run_id, task_id, map_index = request
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"
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
            ("approval_1", in_airflow("chen", "Approve", "looks fine to me")),
            ("approval_1", in_airflow("dana", "Approve", "drift explained by the campaign")),
            ("approval_2", in_airflow("gustav", "Approve", "second pair of eyes: agreed")),
        ],
    )
    assert answers == [(True, 403), (True, 200), (True, 200)]
    closed = rt.store.get_gate(gate.id)
    assert closed.status == "approved"
    deciders = [(d.person, d.decision, d.channel) for d in rt.store.decisions_for(gate.id)]
    assert deciders == [("dana", "approve", "airflow"), ("gustav", "approve", "airflow")]
    assert set(states(dag_run).values()) == {"success"}
    asked = requests(dag_run.run_id)
    assert asked["approval_1"]["options"] == ["Approve", "Reject", "Request waiver"]
    assert "chen" not in asked["approval_1"]["assigned"]  # separation of duties
    assert "dana" not in asked["approval_2"]["assigned"]  # two distinct people


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
    assert requests(dag_run.run_id) == {}


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
            ("approval_1", in_airflow("stranger", "Approve", "why not")),  # not assigned: 403
            ("approval_1", in_airflow("dana", "Request waiver", "seasonal, retrain scheduled")),
        ],
    )
    assert [status for _, status in answers] == [403, 200]
    assert rt.store.get_gate(gate.id).status == "approved"
    waivers = rt.store.list_waivers(model="credit-limit-regressor")
    waived = [w for w in waivers if w.finding_id == finding.id]
    assert [w.approver for w in waived] == ["dana"]
    assert set(states(dag_run).values()) == {"success"}


# ------------------------------------------------------------- decided elsewhere while asking


def in_cli(person: str, verb: str, reason: str, mlflow_server: str) -> Act:
    """``person`` runs ``prodcontrol gates VERB GATE --reason ...`` with their own token."""

    def act(api: TestClient, request: Request) -> tuple[Any, bool]:
        gate_id = gate_of(api, request)
        env = os.environ | {
            "PRODCONTROL_TOKEN": token_for(runtime(), person),
            "PRODCONTROL_MLFLOW_TRACKING_URI": mlflow_server,
        }
        done = subprocess.run(
            [sys.executable, "-m", "prodcontrol", "gates", verb, gate_id, "--reason", reason],
            env=env,
            check=False,  # the result is the step's answer
            capture_output=True,
            text=True,
            timeout=120,
        )
        return (done.returncode, done.stdout + done.stderr) if done.returncode else 0, True

    return act


def in_slack(slack_user: str, decision: str, reason: str) -> Act:
    """The reason modal's submission, signed as Slack signs it, to ``/slack/interactions``."""

    def act(api: TestClient, request: Request) -> tuple[Any, bool]:
        return slack_decision(slack_user, gate_of(api, request), decision, reason), True

    return act


def slack_decision(slack_user: str, gate_id: str, decision: str, reason: str) -> int:
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import load_settings
    from prodcontrol.web.app import create_app

    settings = load_settings(
        mlflow_tracking_uri=os.environ["AIRFLOW_CONN_PRODCONTROL_MLFLOW"],
        slack_signing_secret=SecretStr(SLACK_SECRET),
    )
    with TestClient(create_app(Runtime(settings))) as web:
        body = slack_submission(slack_user, gate_id, decision, reason)
        return web.post(
            "/slack/interactions", content=body, headers=slack_signed(body, SLACK_SECRET)
        ).status_code


def gate_of(api: TestClient, request: Request) -> str:
    run_id, task_id, map_index = request
    path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails"
    detail = api.get(path, headers=token(api, "dana")).json()
    return str(detail["params"][GATE_PARAM]["value"])


def test_a_cli_decision_closes_the_waiting_airflow_request(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")  # medium tier: one decision
    gate = open_finding_gate(rt, finding, "medium", None)
    dag_run, acted = run_dag(
        api, gate.id, [("approval_1", in_cli("dana", "reject", "drift is real", mlflow_server))]
    )
    assert acted == [(True, 0)]
    assert rt.store.get_gate(gate.id).status == "rejected"
    deciders = [(d.person, d.decision, d.channel) for d in rt.store.decisions_for(gate.id)]
    assert deciders == [("dana", "reject", "cli")]  # one decision, taken where it was taken
    asked = requests(dag_run.run_id)
    assert list(asked) == ["approval_1"]  # approval_2 asked nothing: the gate was closed
    assert asked["approval_1"]["chosen"] == ["Decided elsewhere"]
    assert asked["approval_1"]["by"] is None  # prodcontrol answered, not a person
    assert f"gate {gate.id} is rejected: dana rejected (cli)" == asked["approval_1"]["reason"]
    assert set(states(dag_run).values()) == {"success"}
    assert outcome(dag_run, "approval_1")["status"] == "rejected"
    # Required Actions asks no more: an answer now is refused by Airflow itself
    late = answer(api, "emeka", (dag_run.run_id, "approval_1", -1), "Approve", "late")
    assert late.status_code == 409
    assert len(rt.store.decisions_for(gate.id)) == 1


def test_a_slack_approval_answers_the_first_request_and_the_second_asks_someone_else(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "fraud-detector")
    rt = runtime()
    finding = record_finding(rt, "fraud-detector")  # high tier: two people
    gate = open_finding_gate(rt, finding, "high", None, requested_by="chen")
    dag_run, acted = run_dag(
        api,
        gate.id,
        [
            ("approval_1", in_slack("U0DANA004", "approve", "campaign explains the drift")),
            ("approval_2", in_airflow("gustav", "Approve", "second pair of eyes: agreed")),
        ],
    )
    assert acted == [(True, 200), (True, 200)]
    deciders = [(d.person, d.decision, d.channel) for d in rt.store.decisions_for(gate.id)]
    assert deciders == [("dana", "approve", "slack"), ("gustav", "approve", "airflow")]
    assert rt.store.get_gate(gate.id).status == "approved"
    asked = requests(dag_run.run_id)
    assert asked["approval_1"]["chosen"] == ["Decided elsewhere"]
    assert "approval 1 of 2" in asked["approval_1"]["reason"]
    assert "dana" not in asked["approval_2"]["assigned"]
    assert asked["approval_2"]["chosen"] == ["Approve"]
    assert asked["approval_2"]["by"] == {"id": "gustav", "name": "gustav"}
    assert set(states(dag_run).values()) == {"success"}


def test_one_person_answering_in_slack_and_airflow_at_once_is_one_decision(
    mlflow_server: str, api: TestClient
) -> None:
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")
    gate = open_finding_gate(rt, finding, "medium", None)

    def both(api: TestClient, request: Request) -> tuple[Any, bool]:
        start = threading.Barrier(2)
        got: dict[str, int] = {}

        def slack() -> None:
            start.wait()
            got["slack"] = slack_decision("U0DANA004", gate.id, "approve", "from my phone")

        def airflow() -> None:
            start.wait()
            got["airflow"] = answer(api, "dana", request, "Approve", "from my desk").status_code

        threads = [threading.Thread(target=slack), threading.Thread(target=airflow)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return got, True

    dag_run, acted = run_dag(api, gate.id, [("approval_1", both)])
    [(right_task, got)] = acted
    assert right_task and got["slack"] == 200 and got["airflow"] in (200, 409)
    assert rt.store.get_gate(gate.id).status == "approved"
    decisions = rt.store.decisions_for(gate.id)
    assert [(d.person, d.decision) for d in decisions] == [("dana", "approve")]
    assert set(states(dag_run).values()) == {"success"}
    assert outcome(dag_run, "approval_1")["deciders"] == [f"dana:approve:{decisions[0].channel}"]


def test_an_answer_without_the_right_or_a_forged_one_closes_nothing(
    mlflow_server: str, api: TestClient
) -> None:
    """Airflow refuses an unassigned user and the option prodcontrol keeps for itself; a
    "Decided elsewhere" written straight into Airflow's database (someone with DB access, not a
    decision of prodcontrol's) fails the task and leaves the gate open, with no decision."""
    seed_model(mlflow_server, "credit-limit-regressor")
    rt = runtime()
    finding = record_finding(rt, "credit-limit-regressor")
    gate = open_finding_gate(rt, finding, "medium", None)

    def forged(api: TestClient, request: Request) -> tuple[Any, bool]:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        run_id, task_id, map_index = request
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=DAG_ID, run_id=run_id, task_id=task_id, map_index=map_index)
                .one()
            )
            detail = session.query(HITLDetail).filter_by(ti_id=ti.id).one()
            detail.chosen_options = ["Decided elsewhere"]
            detail.params_input = {"reason": "trust me", GATE_PARAM: gate.id}
            detail.responded_by = {"id": "mallory", "name": "mallory"}
            detail.responded_at = datetime.now(UTC)
        return "written", True

    dag_run, acted = run_dag(
        api,
        gate.id,
        [
            ("approval_1", in_airflow("stranger", "Approve", "why not")),  # not assigned
            ("approval_1", in_airflow("dana", "Decided elsewhere", "skip it")),  # not offered
            ("approval_1", forged),
        ],
    )
    assert acted == [(True, 403), (True, 400), (True, "written")]
    assert rt.store.get_gate(gate.id).status == "pending"
    assert rt.store.decisions_for(gate.id) == []
    assert states(dag_run) == {"approval_1": "failed", "approval_2": "upstream_failed"}
    # the gate is still open for a real decision (and the next test's run must not join it)
    decide(rt, gate.id, person="dana", decision="approve", channel="cli", reason="test over")


def test_a_gate_that_runs_out_of_time_gets_its_timeout_action_and_asks_no_more(
    mlflow_server: str, api: TestClient
) -> None:
    """High tier: 8 h to decide, on timeout rollback. The gate falls due half a minute after it
    opens, while approval_1 asks (or, on a slow machine, before it asks): either way the tier's
    timeout action is applied, nobody is left asking, and nobody decided."""
    seed_model(mlflow_server, "fraud-detector")
    opened = runtime(clock=ManualClock(datetime.now(UTC) - timedelta(hours=8, seconds=-30)))
    finding = record_finding(opened, "fraud-detector")
    gate = open_finding_gate(opened, finding, "high", None, requested_by="chen")
    dag_run, acted = run_dag(api, gate.id, [])
    rt = runtime()
    assert acted == [] and rt.store.get_gate(gate.id).status == "expired"
    assert rt.store.decisions_for(gate.id) == []
    (action,) = [a for a in rt.store.list_actions("fraud-detector") if a.gate_id == gate.id]
    assert (action.action, action.status, action.requested_by) == ("rollback", "applied", "system")
    assert asking(dag_run.run_id) == []
    for asked in requests(dag_run.run_id).values():  # answered by prodcontrol, if it asked
        assert asked["chosen"] == ["Decided elsewhere"] and "due time" in asked["reason"]
    assert set(states(dag_run).values()) == {"success"}
    assert outcome(dag_run, "approval_1")["status"] == "expired"


def outcome(dag_run: Any, task_id: str) -> dict[str, Any]:
    """The task's return value (its XCom), as the next task would read it."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        value = (
            session.query(XComModel.value)
            .filter_by(dag_id=DAG_ID, run_id=dag_run.run_id, task_id=task_id, key="return_value")
            .scalar()
        )
    found: dict[str, Any] = json.loads(value) if isinstance(value, str) else value
    return found
