"""ProdControlActionOperator: rollback, suspend or promote through the core's action functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from airflow.sdk import BaseOperator, Context
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Action

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID
from prodcontrol_airflow.settings import RUNTIME_FIELDS, RuntimeArgs

ActionName = Literal["rollback", "suspend", "promote"]
ACTIONS: tuple[ActionName, ...] = ("rollback", "suspend", "promote")


class ProdControlActionOperator(RuntimeArgs, BaseOperator):
    """Apply an action in MLflow, recorded in the evidence store and as model-version tags.

    ``rollback`` / ``suspend``: by ``person``, who must hold the tier's right for it (shutdown,
    or change for a rollback), with a ``reason``; a refusal is recorded and fails the task.
    ``promote``: only through an approved promotion gate, given as ``gate_id``.
    """

    template_fields: Sequence[str] = (
        "action",
        "model",
        "person",
        "reason",
        "gate_id",
        *RUNTIME_FIELDS,
    )
    ui_color = "#fde2e2"

    def __init__(
        self,
        *,
        action: ActionName | str,
        model: str | None = None,
        person: str | None = None,
        reason: str = "",
        gate_id: str | None = None,
        catalog_dir: str | None = None,
        inventory_dir: str | None = None,
        database_url: str | None = None,
        state_dir: str | None = None,
        mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
        slack_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.action = action  # may be a template such as "{{ params.action }}"
        self.model = model
        self.person = person
        self.reason = reason
        self.gate_id = gate_id
        self._init_runtime_args(
            catalog_dir=catalog_dir,
            inventory_dir=inventory_dir,
            database_url=database_url,
            state_dir=state_dir,
            mlflow_conn_id=mlflow_conn_id,
            slack_conn_id=slack_conn_id,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from prodcontrol.control.gates import actions

        if self.action not in ACTIONS:
            raise UsageError(
                f"task {self.task_id}: action must be one of {', '.join(ACTIONS)}, "
                f"not {self.action!r}"
            )
        rt = self.runtime()
        done: Action
        if self.action == "promote":
            if not self.gate_id:
                raise UsageError(
                    f"task {self.task_id}: promote needs gate_id, the approved promotion gate "
                    f"(open one with `prodcontrol promote MODEL VERSION --to production`)"
                )
            done = actions.promote(rt, rt.store.get_gate(self.gate_id))
        else:
            if not self.model or not self.person:
                raise UsageError(
                    f"task {self.task_id}: {self.action} needs model= and person= (a person "
                    f"in people.yaml holding the right), and a reason="
                )
            apply = actions.manual_rollback if self.action == "rollback" else actions.manual_suspend
            done = apply(rt, self.model, person=self.person, reason=self.reason)
        self.log.info(
            "%s %s v%s: %s %s",
            done.action,
            done.model,
            done.model_version,
            done.status,
            done.result,
        )
        return done.model_dump(mode="json")
