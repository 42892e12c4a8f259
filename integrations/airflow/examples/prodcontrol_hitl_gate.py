"""Example: decide a prodcontrol gate in Airflow's Required Actions UI.

Trigger with ``{"gate_id": "<id from prodcontrol gates list>"}``. Two HITL tasks ask in turn, so
a two-person gate gets its two answers from two people; the second one is assigned to whoever
may still decide, and asks nothing when the gate is already closed (decided by the first
answer, or in Slack, the CLI or the web page). Each answer goes through prodcontrol's rules.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow.sdk import DAG, Param

from prodcontrol_airflow.hitl_gate import ProdControlHITLGateOperator

_EXAMPLE_INVENTORY = Path(__file__).resolve().parents[3] / "examples"
_inventory = None if os.environ.get("PRODCONTROL_INVENTORY_DIR") else str(_EXAMPLE_INVENTORY)

with DAG(
    dag_id="prodcontrol_hitl_gate",
    description="A prodcontrol gate decided by its right holders in Airflow's UI",
    schedule=None,
    tags=["prodcontrol"],
    params={"gate_id": Param("", type="string", description="prodcontrol gate id")},
) as dag:
    first = ProdControlHITLGateOperator(
        task_id="approval_1",
        gate_id="{{ params.gate_id }}",
        approval_number=1,
        response_timeout=timedelta(hours=8),
        inventory_dir=_inventory,
    )
    second = ProdControlHITLGateOperator(
        task_id="approval_2",
        gate_id="{{ params.gate_id }}",
        approval_number=2,
        response_timeout=timedelta(hours=8),
        inventory_dir=_inventory,
    )
    first >> second
