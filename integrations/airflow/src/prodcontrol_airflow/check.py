"""ProdControlCheckOperator: one model's tier controls, recorded as evidence, verdicts to XCom."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID
from prodcontrol_airflow.settings import RUNTIME_FIELDS, RuntimeArgs
from prodcontrol_airflow.verdicts import FailOn, failure_reason, run_of, verdict_table


class ProdControlCheckOperator(RuntimeArgs, BaseOperator):
    """Run ``model``'s tier controls through the core
    (``prodcontrol.control.runs.checks.run_checks``).

    The run, its verdicts, artifacts and findings go to the evidence store; escalations start
    for new findings; the verdict table is the task's return value (XCom ``return_value``), so
    a gate task downstream can take ``check.output``. The task fails per ``fail_on``.
    """

    template_fields: Sequence[str] = ("model", *RUNTIME_FIELDS)
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        model: str,
        fail_on: FailOn = "policy",
        catalog_dir: str | None = None,
        inventory_dir: str | None = None,
        database_url: str | None = None,
        state_dir: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        slack_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.fail_on: FailOn = fail_on
        self.last_run_id: str | None = None
        self._init_runtime_args(
            catalog_dir=catalog_dir,
            inventory_dir=inventory_dir,
            database_url=database_url,
            state_dir=state_dir,
            mlflow_conn_id=mlflow_conn_id,
            slack_conn_id=slack_conn_id,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from prodcontrol.control.runs.checks import run_checks  # type: ignore[import-not-found,unused-ignore]

        rt = self.runtime()
        result = run_checks(rt, self.model, trigger="airflow")
        table = verdict_table(rt, run_of(rt, result))
        self.last_run_id = table["run_id"]  # the failure notifier escalates this run's findings
        for row in table["verdicts"]:
            self.log.info(
                "%s %s: %s value=%s warn=%s fail=%s (%s)",
                self.model,
                row["control_id"],
                row["verdict"],
                row["value"],
                row["warn"],
                row["fail"],
                row["reason"],
            )
        reason = failure_reason(table, self.fail_on)
        if reason is not None:
            # the verdicts stay in XCom for the UI and downstream callbacks
            context["ti"].xcom_push(key="return_value", value=table)
            raise AirflowException(f"controls failed: {reason}; run {table['run_id']}")
        return table
