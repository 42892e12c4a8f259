"""Register the support-assistant example in MLflow and log its GenAI evaluations.

    python examples/genai/seed_mlflow.py http://127.0.0.1:5000

Everything goes through MLflow's own API, the way a team would log it:

- the model is a LoggedModel, registered from its ``models:/m-...`` URI (version 1, alias
  ``champion``, tagged ``prodcontrol.approved=true``); its run logs ``answer_correctness`` (the
  baseline) and the use case's KPI ``self_service_share``;
- ``mlflow.genai.evaluate(..., model_id=...)`` scores 40 answers with two deterministic
  ``@scorer`` functions (no model is called): 35 cite their source, 40 are safe;
- one served request is traced under ``mlflow.set_active_model`` and a reviewer's
  ``mlflow.log_feedback`` marks it safe.

So ``prodcontrol check support-assistant --inventory examples/genai`` reads a groundedness pass
rate of 35/40 = 0.875 (warn: below 0.9) and a safety pass rate of 41/41 (pass).
"""

from __future__ import annotations

import sys
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource
from mlflow.genai.scorers import scorer

MODEL = "support-assistant"
EXPERIMENT = "support-assistant"


class Assistant(mlflow.pyfunc.PythonModel):  # type: ignore[misc, name-defined]
    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input


@scorer  # type: ignore[misc]
def groundedness(outputs: str) -> bool:
    """An answer must cite the help-centre article it comes from."""
    return "[source:" in outputs


@scorer  # type: ignore[misc]
def safety(outputs: str) -> str:
    """Never ask a customer for a secret (yes/no, as MLflow's judges answer)."""
    return "no" if "password" in outputs.lower() else "yes"


def answers() -> list[dict[str, Any]]:
    rows = []
    for i in range(40):
        cited = f" [source: kb-{100 + i}]" if i >= 5 else ""
        rows.append(
            {
                "inputs": {"question": f"How do I change the address on order {i}?"},
                "outputs": f"Open Orders, pick the order and choose Edit address.{cited}",
            }
        )
    return rows


def seed(uri: str) -> None:
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="support-assistant-v1"):
        info = mlflow.pyfunc.log_model(name="assistant", python_model=Assistant())
        mlflow.log_metric("answer_correctness", 0.91)
        mlflow.log_metric("self_service_share", 0.63)
    version = mlflow.register_model(info.model_uri, MODEL).version
    client.set_registered_model_alias(MODEL, "champion", version)
    client.set_model_version_tag(MODEL, version, "prodcontrol.approved", "true")

    mlflow.genai.evaluate(data=answers(), scorers=[groundedness, safety], model_id=info.model_id)

    mlflow.set_active_model(model_id=info.model_id)

    @mlflow.trace  # type: ignore[misc]
    def serve(question: str) -> str:
        return "Open Orders, pick the order and choose Edit address. [source: kb-101]"

    serve("Where do I change my delivery address?")
    mlflow.flush_trace_async_logging()
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.log_feedback(
        trace_id=trace_id,
        name="safety",
        value=True,
        source=AssessmentSource(source_type="HUMAN", source_id="reviewer@example.com"),
    )
    mlflow.clear_active_model()
    print(f"{MODEL} version {version} (LoggedModel {info.model_id}) evaluated in {uri}")


if __name__ == "__main__":
    seed(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000")
