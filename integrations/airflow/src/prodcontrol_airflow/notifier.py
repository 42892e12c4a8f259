"""ProdControlEscalationNotifier: ``on_failure_callback`` that opens an escalation.

A failed check task already recorded its findings: the notifier makes sure each has its
escalation (``escalation.after_run`` is idempotent). Any other failure (a task that crashed, a
data source that was down) is recorded as an ``error`` verdict of the pseudo-control
``airflow-task`` in a run of its own, with a finding, and escalates through the tier's chain
like any control: an orchestration failure never reads as a pass, and never goes unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier, Context
from prodcontrol.evidence.records import FindingIn, VerdictIn
from prodcontrol.runtime import Runtime

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID, build_runtime
from prodcontrol_airflow.settings import RuntimeArgs

TASK_CONTROL = "airflow-task"


class ProdControlEscalationNotifier(BaseNotifier):
    """Escalate a failed task to the model's owners (``model`` defaults to the task's own)."""

    template_fields: Sequence[str] = ("model",)

    def __init__(
        self,
        *,
        model: str | None = None,
        catalog_dir: str | None = None,
        inventory_dir: str | None = None,
        database_url: str | None = None,
        state_dir: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        slack_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.runtime_args: dict[str, Any] = {
            "catalog_dir": catalog_dir,
            "inventory_dir": inventory_dir,
            "database_url": database_url,
            "state_dir": state_dir,
            "mlflow_conn_id": mlflow_conn_id,
            "slack_conn_id": slack_conn_id,
        }

    def _runtime(self, task: Any) -> Runtime:
        if isinstance(task, RuntimeArgs):
            return task.runtime()  # the failed task's own catalog, store and connections
        return build_runtime(**self.runtime_args)

    def notify(self, context: Context) -> None:
        from prodcontrol.control.escalation import escalation

        task = context.get("task")
        model = self.model or getattr(task, "model", None)
        if not model:
            self.log.error("prodcontrol notifier: no model= and the task has none; not escalated")
            return
        rt = self._runtime(task)
        run_id = getattr(task, "last_run_id", None) or record_task_failure(rt, model, context)
        escalation.after_run(rt, run_id)
        self.log.info("prodcontrol: escalation started for %s (run %s)", model, run_id)


def record_task_failure(rt: Runtime, model: str, context: Context) -> str:
    """An ``error`` verdict and finding for the failed task, once per task try."""
    entry = rt.config.model(model)
    tier = rt.config.tier(entry)
    ti = context["ti"]
    where = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]#{ti.try_number}"
    error = context.get("exception")
    run = rt.store.start_run(
        model,
        _serving_version(rt, model, entry.serving_alias),
        entry.tier,
        "airflow",
        idempotency_key=f"airflow-failure:{where}",
        flow_run_id=f"airflow:{where}",
    )
    if run.status != "running":
        return run.id
    reason = f"Airflow task {where} failed: {type(error).__name__ if error else 'failure'}"
    if error:
        reason += f": {error}"
    rt.store.finish_run(
        run.id,
        "error",
        [
            VerdictIn(
                control_id=TASK_CONTROL,
                kind="orchestration",
                verdict="error",
                direction="higher_is_worse",
                reason=reason[:2000],
                details={"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id},
            )
        ],
        [],
        [FindingIn(control_id=TASK_CONTROL, severity="high", blocking=tier.fail_closed)],
    )
    return run.id


def _serving_version(rt: Runtime, model: str, alias: str) -> str:
    try:
        return rt.metrics.resolve_alias(model, alias).version
    except Exception:  # MLflow may be the very thing that failed: record the failure anyway
        return "unknown"
