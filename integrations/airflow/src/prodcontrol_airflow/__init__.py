"""prodcontrol for Airflow 3: tier DAGs, control checks, deferrable gates, actions, escalations.

The same core, catalog, inventory and evidence store as the Prefect flows; Airflow only
schedules and waits. Airflow finds this package through the ``apache_airflow_provider`` entry
point, which points at :func:`get_provider_info`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_MODULES = "prodcontrol_airflow"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's provider manager lists: hooks, connection types, operators, triggers."""
    integration = "prodcontrol"
    return {
        "package-name": "prodcontrol-airflow",
        "name": "prodcontrol",
        "description": "Production controls for ML models: tiered checks, human gates, "
        "MLflow actions, escalations and tamper-evident evidence.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": integration, "tags": ["software"]},
        ],
        "operators": [
            {
                "integration-name": integration,
                "python-modules": [
                    f"{_MODULES}.check",
                    f"{_MODULES}.gate",
                    f"{_MODULES}.action",
                ],
            }
        ],
        "hooks": [{"integration-name": integration, "python-modules": [f"{_MODULES}.hooks"]}],
        "triggers": [{"integration-name": integration, "python-modules": [f"{_MODULES}.triggers"]}],
        "notifications": [f"{_MODULES}.notifier.ProdControlEscalationNotifier"],
        "connection-types": [
            {
                "hook-class-name": f"{_MODULES}.hooks.MlflowConnectionHook",
                "connection-type": "prodcontrol_mlflow",
            },
            {
                "hook-class-name": f"{_MODULES}.hooks.SlackConnectionHook",
                "connection-type": "prodcontrol_slack",
            },
        ],
    }
