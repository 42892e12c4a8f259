"""The arguments every prodcontrol operator takes to reach the catalog, store and systems."""

from __future__ import annotations

from typing import Any

from prodcontrol.runtime import Runtime

from prodcontrol_airflow.hooks import DEFAULT_MLFLOW_CONN_ID, build_runtime

RUNTIME_FIELDS = ("catalog_dir", "inventory_dir", "database_url", "state_dir")


class RuntimeArgs:
    """Mixin: where the catalog, inventory and evidence store are, and which connections to use.

    Unset values come from ``PRODCONTROL_*`` variables or ``prodcontrol.toml`` on the worker,
    exactly as for the CLI, so an Airflow task and a Prefect flow see the same evidence.
    """

    def _init_runtime_args(
        self,
        *,
        catalog_dir: str | None,
        inventory_dir: str | None,
        database_url: str | None,
        state_dir: str | None,
        mlflow_conn_id: str | None,
        slack_conn_id: str | None,
    ) -> None:
        self.catalog_dir = catalog_dir
        self.inventory_dir = inventory_dir
        self.database_url = database_url
        self.state_dir = state_dir
        self.mlflow_conn_id = mlflow_conn_id
        self.slack_conn_id = slack_conn_id

    def runtime(self) -> Runtime:
        return build_runtime(
            mlflow_conn_id=self.mlflow_conn_id,
            slack_conn_id=self.slack_conn_id,
            catalog_dir=self.catalog_dir,
            inventory_dir=self.inventory_dir,
            database_url=self.database_url,
            state_dir=self.state_dir,
        )

    def runtime_kwargs(self) -> dict[str, Any]:
        """The same arguments, to hand to a trigger or a downstream operator."""
        return {
            "catalog_dir": self.catalog_dir,
            "inventory_dir": self.inventory_dir,
            "database_url": self.database_url,
            "state_dir": self.state_dir,
            "mlflow_conn_id": self.mlflow_conn_id,
            "slack_conn_id": self.slack_conn_id,
        }


def runtime_defaults() -> dict[str, Any]:
    return {
        "catalog_dir": None,
        "inventory_dir": None,
        "database_url": None,
        "state_dir": None,
        "mlflow_conn_id": DEFAULT_MLFLOW_CONN_ID,
        "slack_conn_id": None,
    }
