"""ProdControlGateOperator: open or adopt a run's gates and defer until people decide.

While the gate is pending the task is *deferred*: the triggerer polls the gate record and no
worker slot is held, for hours or days. A decision from Slack, the CLI, the web page (or
``decide(..., channel="airflow")``) resumes it. When a gate's time runs out the operator expires
it through the core (``decisions.expire_due_gates``), which applies the tier's timeout action
(accept, rollback or suspend) in MLflow and records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID
from prodcontrol_airflow.settings import RUNTIME_FIELDS, RuntimeArgs
from prodcontrol_airflow.triggers import ProdControlGateTrigger
from prodcontrol_airflow.verdicts import needs_gate

BLOCKING_OUTCOMES = ("rollback", "suspend")


class ProdControlGateOperator(RuntimeArgs, BaseOperator):
    """Wait on the human gate(s) of a control run, deferred, and apply the outcome.

    Give ``check_result`` (a check task's ``.output``: the gates of its gated findings are
    opened or adopted) or ``gate_ids`` (gates opened elsewhere, e.g. a promotion gate). The
    return value lists each gate's status and the action its outcome set off. With
    ``fail_on_block`` the task fails when an outcome stopped the model (rollback, suspend).
    """

    template_fields: Sequence[str] = ("check_result", "gate_ids", *RUNTIME_FIELDS)
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        check_result: Any = None,
        gate_ids: list[str] | None = None,
        poll_interval: float = 30.0,
        fail_on_block: bool = True,
        catalog_dir: str | None = None,
        inventory_dir: str | None = None,
        database_url: str | None = None,
        state_dir: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        slack_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.check_result = check_result
        self.gate_ids = gate_ids
        self.poll_interval = poll_interval
        self.fail_on_block = fail_on_block
        self._init_runtime_args(
            catalog_dir=catalog_dir,
            inventory_dir=inventory_dir,
            database_url=database_url,
            state_dir=state_dir,
            mlflow_conn_id=mlflow_conn_id,
            slack_conn_id=slack_conn_id,
        )

    # ------------------------------------------------------------------ opening

    def open_gates(self, rt: Runtime, flow_run_id: str) -> list[Gate]:
        """The gates to wait on: given ids, or the one gate of the checked run's gated findings."""
        from prodcontrol.control.gates.decisions import open_finding_gate
        from prodcontrol.control.runs.finding_groups import worst_first

        if self.gate_ids:
            return [rt.store.get_gate(gate_id) for gate_id in self.gate_ids]
        result = self.check_result or {}
        run_id = result.get("run_id") if isinstance(result, dict) else None
        if not run_id:
            return []
        run = rt.store.get_run(str(run_id))
        findings = [f for f in rt.store.list_findings(model=run.model) if f.run_id == run.id]
        gated = worst_first(f for f in findings if needs_gate(rt, f))
        if not gated:
            return []
        # one run, one gate: it covers every gated finding (worst first)
        return [
            open_finding_gate(
                rt, gated[0], run.tier, flow_run_id, requested_by=None, findings=gated
            )
        ]

    def execute(self, context: Context) -> dict[str, Any]:
        rt = self.runtime()
        ti = context["ti"]
        flow_run_id = f"airflow:{ti.dag_id}/{ti.run_id}/{ti.task_id}[{ti.map_index}]"
        gates = self.open_gates(rt, flow_run_id)
        if not gates:
            self.log.info("no gate: nothing in this run needs a person's decision")
            return {"status": "no_gate", "gates": []}
        for gate in gates:
            self.log.info(
                "gate %s on %s v%s: %s, needs %d approval(s) (right %s), due %s",
                gate.id,
                gate.model,
                gate.model_version,
                gate.status,
                gate.required_approvals,
                gate.right,
                gate.due_at,
            )
        return self._wait_or_finish(rt, [g.id for g in gates])

    # ------------------------------------------------------------------ waiting

    def _wait_or_finish(self, rt: Runtime, gate_ids: list[str]) -> dict[str, Any]:
        from prodcontrol.control.gates.decisions import expire_due_gates

        expire_due_gates(rt)  # a gate already overdue gets its timeout action now
        gates = [rt.store.get_gate(g) for g in gate_ids]
        if any(g.status == "pending" for g in gates):
            self.defer(
                trigger=ProdControlGateTrigger(
                    gate_ids=gate_ids,
                    database_url=rt.settings.resolved_database_url,
                    poll_interval=self.poll_interval,
                ),
                method_name="execute_complete",
                kwargs={"gate_ids": gate_ids},
            )
        return self._finish(rt, gates)

    def execute_complete(
        self, context: Context, event: dict[str, Any], gate_ids: list[str] | None = None
    ) -> dict[str, Any]:
        """Resumed by the trigger: decided, or a gate is overdue (expire it, maybe wait more)."""
        self.log.info("gate event %s", event)
        if event.get("status") == "error":
            raise AirflowException(f"waiting on gates {gate_ids} failed: {event.get('message')}")
        ids = gate_ids or list(event.get("gates", {}))
        return self._wait_or_finish(self.runtime(), ids)

    def _finish(self, rt: Runtime, gates: list[Gate]) -> dict[str, Any]:
        from prodcontrol.control.gates import actions

        rows = []
        for gate in gates:
            # idempotent: applies the outcome if the writer of the decision did not
            action = actions.apply_gate_outcome(rt, gate)
            rows.append(
                {
                    "gate_id": gate.id,
                    "model": gate.model,
                    "model_version": gate.model_version,
                    "status": gate.status,
                    "decided_at": gate.decided_at.isoformat() if gate.decided_at else None,
                    "action": action.action if action else None,
                    "action_status": action.status if action else None,
                    "deciders": [
                        f"{d.person}:{d.decision}:{d.channel}"
                        for d in rt.store.decisions_for(gate.id)
                    ],
                }
            )
            self.log.info("gate %s %s; action %s", gate.id, gate.status, rows[-1]["action"])
        table = {"status": "closed", "gates": rows}
        blocked = [r for r in rows if r["action"] in BLOCKING_OUTCOMES]
        if self.fail_on_block and blocked:
            names = ", ".join(f"{r['gate_id']} {r['status']} -> {r['action']}" for r in blocked)
            raise AirflowException(f"gate outcome stopped the model: {names}")
        return table
