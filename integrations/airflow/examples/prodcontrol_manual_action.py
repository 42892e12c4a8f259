"""Example: a person rolls back or suspends a model from the Airflow UI ("Trigger DAG w/ config").

The action goes through prodcontrol's core like ``prodcontrol rollback``: the person must be in
people.yaml and hold the tier's right (shutdown, or change for a rollback); the action is
recorded as evidence and tagged on the MLflow model version. A failure escalates to the model's
owners through the notifier.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param

from prodcontrol_airflow.action import ProdControlActionOperator
from prodcontrol_airflow.notifier import ProdControlEscalationNotifier

_EXAMPLE_INVENTORY = Path(__file__).resolve().parents[3] / "examples"
_inventory = None if os.environ.get("PRODCONTROL_INVENTORY_DIR") else str(_EXAMPLE_INVENTORY)

with DAG(
    dag_id="prodcontrol_manual_action",
    description="Roll back or suspend a model, by a named person with the right, with a reason",
    schedule=None,
    tags=["prodcontrol"],
    params={
        "model": Param("fraud-detector", type="string"),
        "action": Param("rollback", enum=["rollback", "suspend"]),
        "person": Param("dana", type="string", description="person id from people.yaml"),
        "reason": Param("drift confirmed by the model owner", type="string", minLength=1),
    },
) as dag:
    ProdControlActionOperator(
        task_id="action",
        action="{{ params.action }}",
        model="{{ params.model }}",
        person="{{ params.person }}",
        reason="{{ params.reason }}",
        inventory_dir=_inventory,
        on_failure_callback=ProdControlEscalationNotifier(inventory_dir=_inventory),
    )
