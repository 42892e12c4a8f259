"""Example: prodcontrol's controls as Airflow DAGs, one per risk tier, plus the escalation ticker.

Copy this file into your DAGs folder. It reads the same catalog, inventory and evidence store as
the prodcontrol CLI and the Prefect flows: set ``PRODCONTROL_INVENTORY_DIR`` (models.yaml and
people.yaml), optionally ``PRODCONTROL_CATALOG_DIR`` and ``PRODCONTROL_DATABASE_URL``, on the
scheduler, workers and triggerer, and add the Airflow connection ``prodcontrol_mlflow``
(``airflow connections add prodcontrol_mlflow --conn-uri http://mlflow.internal:5000``).
Without ``PRODCONTROL_INVENTORY_DIR`` it uses the repository's example inventory.
"""

from __future__ import annotations

import os
from pathlib import Path

from prodcontrol_airflow.dag_factory import build_dags

_EXAMPLE_INVENTORY = Path(__file__).resolve().parents[3] / "examples"
_inventory = None if os.environ.get("PRODCONTROL_INVENTORY_DIR") else _EXAMPLE_INVENTORY

globals().update(build_dags(inventory_dir=_inventory))
