"""MLflow and Slack reached through Airflow connections, and the prodcontrol Runtime built on them.

Secrets stay in Airflow's connection and secrets system (environment ``AIRFLOW_CONN_*``, the
metadata DB, or a secrets backend such as Vault); nothing is read from DAG files. A missing
connection is an error that names the connection and says how to add it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException
from prodcontrol.errors import ConfigError, Problem
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings

DEFAULT_MLFLOW_CONN_ID = "prodcontrol_mlflow"
DEFAULT_SLACK_CONN_ID = "prodcontrol_slack"


class MissingConnection(ConfigError):
    """An Airflow connection the task needs is not defined anywhere Airflow looks."""

    def __init__(self, conn_id: str, purpose: str, example_uri: str) -> None:
        env = f"AIRFLOW_CONN_{conn_id.upper()}"
        super().__init__(
            [
                Problem(
                    "airflow connections",
                    0,
                    conn_id,
                    f"connection '{conn_id}' ({purpose}) is not defined; add it with "
                    f"`airflow connections add {conn_id} --conn-uri '{example_uri}'`, "
                    f"or set {env}, or define it in your secrets backend",
                )
            ]
        )
        self.conn_id = conn_id


def _lookup(conn_id: str, purpose: str, example_uri: str) -> Connection:
    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        raise MissingConnection(conn_id, purpose, example_uri) from None


class MlflowConnectionHook(BaseHook):
    """The MLflow tracking server: ``http(s)://host:port/path``; extra ``tracking_uri`` wins."""

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = DEFAULT_MLFLOW_CONN_ID
    conn_type = "prodcontrol_mlflow"
    hook_name = "prodcontrol MLflow"

    def __init__(self, mlflow_conn_id: str = DEFAULT_MLFLOW_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mlflow_conn_id = mlflow_conn_id

    def get_conn(self) -> str:
        """The tracking URI the connection describes."""
        conn = _lookup(self.mlflow_conn_id, "MLflow tracking server", "http://mlflow.internal:5000")
        return tracking_uri(conn)


def tracking_uri(conn: Connection) -> str:
    extra = conn.extra_dejson
    if extra.get("tracking_uri"):
        return str(extra["tracking_uri"])
    scheme = "https" if conn.conn_type == "https" or extra.get("https") else "http"
    if not conn.host:
        raise MissingConnection(
            conn.conn_id, "MLflow tracking server: it has no host", "http://mlflow.internal:5000"
        )
    host = conn.host if "://" not in conn.host else conn.host.split("://", 1)[1]
    port = f":{conn.port}" if conn.port else ""
    path = f"/{conn.schema.strip('/')}" if conn.schema else ""
    return f"{scheme}://{host}{port}{path}"


class SlackConnectionHook(BaseHook):
    """Slack Web API: bot token in the password; extra ``signing_secret`` and ``base_url``."""

    conn_name_attr = "slack_conn_id"
    default_conn_name = DEFAULT_SLACK_CONN_ID
    conn_type = "prodcontrol_slack"
    hook_name = "prodcontrol Slack"

    def __init__(self, slack_conn_id: str = DEFAULT_SLACK_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slack_conn_id = slack_conn_id

    def get_conn(self) -> dict[str, str]:
        """The prodcontrol settings the connection gives: token, signing secret, base URL."""
        conn = _lookup(
            self.slack_conn_id, "Slack bot token", "prodcontrol-slack://:xoxb-your-token@"
        )
        if not conn.password:
            raise MissingConnection(
                self.slack_conn_id,
                "Slack: the bot token goes in the password field",
                "prodcontrol-slack://:xoxb-your-token@",
            )
        values = {"slack_bot_token": conn.password}
        extra = conn.extra_dejson
        for key in ("signing_secret", "base_url"):
            if extra.get(key):
                values[f"slack_{key}"] = str(extra[key])
        return values


def build_runtime(
    *,
    mlflow_conn_id: str | None = DEFAULT_MLFLOW_CONN_ID,
    slack_conn_id: str | None = None,
    catalog_dir: str | Path | None = None,
    inventory_dir: str | Path | None = None,
    database_url: str | None = None,
    state_dir: str | Path | None = None,
) -> Runtime:
    """A prodcontrol Runtime whose MLflow and Slack come from Airflow connections.

    Everything not given here comes from ``PRODCONTROL_*`` variables and ``prodcontrol.toml``,
    as for the CLI and the Prefect flows, so all three share one catalog and evidence store.
    ``None`` for a connection id means: do not use that system from this task.
    """
    overrides: dict[str, Any] = {
        "catalog_dir": Path(catalog_dir) if catalog_dir else None,
        "inventory_dir": Path(inventory_dir) if inventory_dir else None,
        "database_url": database_url,
        "state_dir": Path(state_dir) if state_dir else None,
    }
    if mlflow_conn_id:
        overrides["mlflow_tracking_uri"] = MlflowConnectionHook(mlflow_conn_id).get_conn()
    if slack_conn_id:
        overrides.update(SlackConnectionHook(slack_conn_id).get_conn())
    return Runtime(load_settings(**overrides))
