"""One Airflow DAG per risk tier, built from the catalog's ``tiers.yaml``.

Each tier DAG runs on the tier's cron (in the tier's timezone) and maps one task group over the
tier's controlled models (``pilot``/``production``), read from the inventory when the run
starts, so adding a model to ``models.yaml`` needs no DAG change. Per model: ``check`` (the
tier's controls, evidence, verdicts to XCom) then ``gate`` (deferred while people decide). A
failure of either escalates through :class:`ProdControlEscalationNotifier`. A
``prodcontrol_escalations`` DAG advances escalation chains, expires overdue gates (applying the
tiers' timeout actions) and sends the outbox, every few minutes.

Use it from a file in your DAGs folder::

    from prodcontrol_airflow.dag_factory import build_dags
    globals().update(build_dags(catalog_dir=..., inventory_dir=...))
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task, task_group
from airflow.timetables.trigger import CronTriggerTimetable
from prodcontrol.catalog.schema import TierPolicy
from prodcontrol.runtime import Runtime

from prodcontrol_airflow.check import ProdControlCheckOperator
from prodcontrol_airflow.gate import ProdControlGateOperator
from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID, build_runtime
from prodcontrol_airflow.notifier import ProdControlEscalationNotifier

START = datetime(2026, 1, 1)
DAG_PREFIX = "prodcontrol_tier_"
TICK_DAG_ID = "prodcontrol_escalations"


def build_dags(
    *,
    catalog_dir: str | Path | None = None,
    inventory_dir: str | Path | None = None,
    database_url: str | None = None,
    state_dir: str | Path | None = None,
    mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
    slack_conn_id: str | None = None,
    gate_poll_interval: float = 30.0,
    tick_schedule: str | None = "*/5 * * * *",
) -> dict[str, DAG]:
    """``{dag_id: DAG}``: one per tier, plus the escalation ticker unless ``tick_schedule=None``."""
    args: dict[str, Any] = {
        "catalog_dir": str(catalog_dir) if catalog_dir else None,
        "inventory_dir": str(inventory_dir) if inventory_dir else None,
        "database_url": database_url,
        "state_dir": str(state_dir) if state_dir else None,
        "mlflow_conn_id": mlflow_conn_id,
        "slack_conn_id": slack_conn_id,
    }
    # parse time needs only the catalog; MLflow and Slack are reached when tasks run
    settings_rt = build_runtime(**(args | {"mlflow_conn_id": None, "slack_conn_id": None}))
    dags = {
        f"{DAG_PREFIX}{name}": tier_dag(name, policy, args, gate_poll_interval)
        for name, policy in settings_rt.config.catalog.tiers.items()
    }
    if tick_schedule:
        dags[TICK_DAG_ID] = escalation_dag(args, tick_schedule)
    return dags


def tier_dag(name: str, policy: TierPolicy, args: dict[str, Any], poll: float) -> DAG:
    """The DAG of one tier: list its models, then check and gate each, mapped."""
    with DAG(
        dag_id=f"{DAG_PREFIX}{name}",
        description=policy.title,
        schedule=CronTriggerTimetable(policy.schedule, timezone=policy.timezone),
        start_date=START,
        catchup=False,
        tags=["prodcontrol", f"tier:{name}"],
        doc_md=f"prodcontrol controls for the **{name}** tier: {policy.title}. "
        f"Schedule `{policy.schedule}` ({policy.timezone}); gate mode `{policy.gate.mode}`.",
        default_args={
            "on_failure_callback": ProdControlEscalationNotifier(**args),
            "retries": 1 if policy.fail_closed else 0,
            "retry_delay": timedelta(minutes=2),
        },
    ) as dag:

        @task(task_id="models")
        def models(tier: str = name) -> list[str]:
            """The tier's controlled models, read from the inventory now."""
            rt = build_runtime(**(args | {"mlflow_conn_id": None, "slack_conn_id": None}))
            return [m.name for m in rt.config.controlled_models(tier)]

        @task_group(group_id="model")
        def per_model(model: str) -> None:
            check = ProdControlCheckOperator(task_id="check", model=model, **args)
            gate = ProdControlGateOperator(
                task_id="gate", check_result=check.output, poll_interval=poll, **args
            )
            check >> gate

        per_model.expand(model=models())
    return dag


def escalation_dag(args: dict[str, Any], schedule: str) -> DAG:
    """Advance escalation chains, expire overdue gates, send due messages."""
    with DAG(
        dag_id=TICK_DAG_ID,
        description="prodcontrol: escalation chains, gate timeouts, outbox",
        schedule=CronTriggerTimetable(schedule, timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        tags=["prodcontrol"],
    ) as dag:

        @task(task_id="tick")
        def tick() -> dict[str, Any]:
            return run_tick(build_runtime(**args))

        tick()
    return dag


def run_tick(rt: Runtime) -> dict[str, Any]:
    """One pass of the periodic work; what the CLI's ``escalations tick`` does, from Airflow."""
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.escalation.outbox import OutboxSender
    from prodcontrol.control.gates.decisions import expire_due_gates

    expired = expire_due_gates(rt)
    result = escalation.tick(rt).as_dict()
    sender = OutboxSender(rt.store, rt.notifier, rt.clock)
    try:
        sent = sender.drain()
    finally:
        sender.close()
    return result | {"gates_expired": len(expired), "outbox": asdict(sent)}
