"""genai-evaluation controls against a real ``mlflow server``: evaluations logged with
``mlflow.genai.evaluate`` (deterministic ``@scorer`` functions, no model call) and served
traces with ``mlflow.log_feedback``, read back by the check runner, decided, gated and
escalated over the local Slack server; an MLflow that does not answer is an ``error`` that
escalates.

The inventory is built here: one generative model, ``support-assistant-<id>``, on a medium
tier that runs only the GenAI controls and ownership (a single approver, gate on fail).
"""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource
from mlflow.genai.scorers import scorer
from pydantic import SecretStr

from prodcontrol.adapters.mlflow_genai import MlflowGenAIEvaluations
from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.errors import EXIT_UNREACHABLE
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EMEKA_DM = "DU0EMEKA05"  # model_behaviour owner: the medium chain's first step
ROWS = 20


class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input


@scorer  # type: ignore[misc]
def groundedness(outputs: str) -> bool:
    """Deterministic stand-in for a grounding judge: an answer must cite its source."""
    return "[source:" in outputs


@scorer  # type: ignore[misc]
def safety(outputs: str) -> str:
    """Deterministic stand-in for a safety judge, answering like one (yes/no)."""
    return "no" if "password" in outputs else "yes"


def answers(ungrounded: int, unsafe: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(ROWS):
        text = f"Reset it under Settings > Account [source: kb-{i}]"
        if i < ungrounded:
            text = "Reset it under Settings > Account"
        if i >= ROWS - unsafe:
            text += "; or tell me your password"
        rows.append({"inputs": {"question": f"how do I reset my account {i}?"}, "outputs": text})
    return rows


def register(client: MlflowClient, name: str, experiment: str) -> tuple[str, str]:
    """A LoggedModel in ``experiment`` and a registered version made from it."""
    mlflow.set_experiment(experiment)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(name="assistant", python_model=Echo())
    version = mlflow.register_model(info.model_uri, name)
    return str(info.model_id), str(version.version)


def catalog(tmp_path: Path) -> Path:
    """The bundled catalog; medium runs the GenAI controls and ownership, 5 assessments do."""
    target = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), target)
    controls = target / "controls.yaml"
    controls.write_text(controls.read_text().replace("min_assessments: 20", "min_assessments: 5"))
    tiers = target / "tiers.yaml"
    text = tiers.read_text()
    medium = text.index("  medium:")
    start = text.index("    controls: [", medium)
    end = text.index("]\n", start) + 2
    wanted = "    controls: [genai-groundedness, genai-safety, ownership-readiness]\n"
    text = text[:start] + wanted + text[end:]
    overrides = text.index("    thresholds:\n", medium)
    text = text[:overrides] + text[text.index("    sampling:", overrides) :]
    tiers.write_text(text)
    return target


def inventory(tmp_path: Path, name: str, experiment: str) -> Path:
    target = tmp_path / "inventory"
    target.mkdir()
    shutil.copy(EXAMPLES / "people.yaml", target / "people.yaml")
    model = {
        "name": name,
        "description": "Answers customer questions from the help-centre articles.",
        "tier": "medium",
        "stage": "production",
        "owners": {
            "business_outcome": "hana",
            "data_domain": "farah",
            "model_behaviour": "emeka",
            "workflow_impact": "emeka",
            "operating_risk": "dana",
        },
        "genai": {"experiment": experiment},
        "last_review": "2026-11-01",
    }
    (target / "models.yaml").write_text(yaml.safe_dump({"models": [model]}, sort_keys=False))
    return target


def runtime(
    tmp_path: Path, inv: Path, uri: str, database_url: str, slack: LocalSlackServer, **adapters: Any
) -> Runtime:
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inv,
        catalog_dir=catalog(tmp_path),
        database_url=database_url,
        mlflow_tracking_uri=uri,
        slack_signing_secret=SecretStr("s" * 32),
    )
    clock = ManualClock(datetime.now(UTC))
    rt = Runtime(settings, clock, **adapters)
    rt.__dict__["notifier"] = SlackNotifier(
        slack.token,
        people=rt.config.inventory.people,
        base_url=slack.base_url,
        store=rt.store,
        retries=2,
        backoff=0.01,
    )
    return rt


@pytest.fixture(scope="module")
def assistant(mlflow_server: Any) -> Iterator[dict[str, str]]:
    """The served version evaluated (3 ungrounded, 1 unsafe answer of 20) plus one served
    trace a reviewer judged unsafe; a second version, not serving, evaluated all good.

    Logged once for the module (evaluations take seconds): the tests only read them.
    """
    if not mlflow_server.running:
        mlflow_server.start()
    mlflow_uri = str(mlflow_server.uri)
    name = f"support-assistant-{uuid.uuid4().hex[:8]}"
    experiment = f"{name}-evals"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    try:
        served_model, served = register(client, name, experiment)
        client.set_registered_model_alias(name, "champion", served)
        client.set_model_version_tag(name, served, "prodcontrol.approved", "true")
        evaluation = mlflow.genai.evaluate(
            data=answers(ungrounded=3, unsafe=1),
            scorers=[groundedness, safety],
            model_id=served_model,
        )
        mlflow.set_active_model(model_id=served_model)

        @mlflow.trace  # type: ignore[misc]
        def serve(question: str) -> str:
            return "Send me your password and I will do it"

        serve("please reset my account")
        mlflow.flush_trace_async_logging()
        trace_id = mlflow.get_last_active_trace_id()
        assert trace_id is not None
        mlflow.log_feedback(
            trace_id=trace_id,
            name="safety",
            value=False,
            source=AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com"),
        )
        mlflow.clear_active_model()
        other_model, _other = register(client, name, experiment)
        mlflow.genai.evaluate(
            data=answers(ungrounded=0, unsafe=0),
            scorers=[groundedness, safety],
            model_id=other_model,
        )
        yield {
            "name": name,
            "experiment": experiment,
            "model_id": served_model,
            "evaluation_run": evaluation.run_id,
            "served_trace": trace_id,
        }
    finally:
        mlflow.clear_active_model()
        mlflow.set_tracking_uri(before)


def drain(rt: Runtime) -> int:
    return OutboxSender(rt.store, rt.notifier, rt.clock, workers=1).drain().sent


def test_pass_rates_of_the_serving_version_gate_and_escalate(
    tmp_path: Path,
    mlflow_uri: str,
    sqlite_url: str,
    slack_server: LocalSlackServer,
    assistant: dict[str, str],
) -> None:
    inv = inventory(tmp_path, assistant["name"], assistant["experiment"])
    rt = runtime(tmp_path, inv, mlflow_uri, sqlite_url, slack_server)

    result = run_checks(rt, assistant["name"])

    verdicts = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    grounded, safe = verdicts["genai-groundedness"], verdicts["genai-safety"]
    # 17 of the served version's 20 evaluated answers cite a source: warn (< 0.9, >= 0.8)
    assert (grounded.verdict, grounded.value) == ("warn", 17 / 20), grounded.reason
    scores = grounded.details["scorers"]["groundedness"]
    assert (scores["assessments"], scores["passed"]) == (20, 17)
    # 19 safe evaluated answers plus one served answer a reviewer marked unsafe: 19 of 21
    assert safe.verdict == "fail" and safe.value == pytest.approx(19 / 21)
    assert safe.details["scorers"]["safety"]["traces"] == 21
    # linked through MLflow's LoggedModel: the other version's all-good evaluation is not read
    assert safe.details["model_id"] == assistant["model_id"]
    assert safe.details["evaluation_runs"] == [assistant["evaluation_run"]]

    # one run, one gate (medium: on fail, one approver), one chain reaching the owner on Slack
    assert result.gate_id is not None and result.exit_code == 1
    gate = rt.store.get_gate(result.gate_id)
    assert gate.status == "pending"
    assert [e.gate_id for e in rt.store.list_escalations()] == [gate.id]
    drain(rt)
    text = str(slack_server.messages(EMEKA_DM)[-1]["blocks"])
    assert "genai-safety" in text and "genai-groundedness" in text
    assert rt.store.verify().ok


def test_sources_and_window_select_what_is_judged(
    tmp_path: Path,
    mlflow_uri: str,
    sqlite_url: str,
    slack_server: LocalSlackServer,
    assistant: dict[str, str],
) -> None:
    inv = inventory(tmp_path, assistant["name"], assistant["experiment"])
    rt = runtime(tmp_path, inv, mlflow_uri, sqlite_url, slack_server)
    version = rt.metrics.resolve_alias(assistant["name"], "champion")
    now = datetime.now(UTC)
    found = rt.genai.assessments(
        version,
        experiment=assistant["experiment"],
        since=now - timedelta(hours=1),
        until=now,
        names=["safety"],
    )
    served = [a for a in found.items if a.evaluation_run is None]
    assert [(a.trace_id, a.value, a.source_type) for a in served] == [
        (assistant["served_trace"], False, "HUMAN")
    ]
    assert len(found.items) == 21 and found.evaluation_runs == [assistant["evaluation_run"]]

    # a week later nothing was evaluated in the window: an error, never a pass
    rt.clock.set(now + timedelta(days=8))  # type: ignore[attr-defined]
    result = run_checks(rt, assistant["name"])
    verdicts = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    assert verdicts["genai-safety"].verdict == "error"
    assert "too few assessments in the window" in verdicts["genai-safety"].reason


def dead_uri() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_mlflow_down_is_an_error_that_escalates(
    tmp_path: Path,
    mlflow_uri: str,
    sqlite_url: str,
    slack_server: LocalSlackServer,
    assistant: dict[str, str],
) -> None:
    inv = inventory(tmp_path, assistant["name"], assistant["experiment"])
    rt = runtime(
        tmp_path,
        inv,
        mlflow_uri,
        sqlite_url,
        slack_server,
        genai=MlflowGenAIEvaluations(dead_uri()),
    )

    result = run_checks(rt, assistant["name"])

    verdicts = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    for control in ("genai-groundedness", "genai-safety"):
        assert verdicts[control].verdict == "error"
        assert verdicts[control].details.get("unreachable") is True
        assert "MLflow" in verdicts[control].reason
    assert result.exit_code == EXIT_UNREACHABLE
    findings = [
        f for f in rt.store.list_findings(model=assistant["name"]) if f.run_id == result.run_id
    ]
    assert {f.control_id for f in findings} == {"genai-groundedness", "genai-safety"}
    assert rt.store.list_escalations(), "the error findings started no chain"
    drain(rt)
    assert "genai-safety" in str(slack_server.messages(EMEKA_DM)[-1]["blocks"])
    escalation.tick(rt)
