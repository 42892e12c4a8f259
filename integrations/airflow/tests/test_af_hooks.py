"""Connections come from Airflow's connection system; a missing one is named in the error."""

from __future__ import annotations

import pytest

from prodcontrol_airflow.hooks import (
    MissingConnection,
    MlflowConnectionHook,
    SlackConnectionHook,
    build_runtime,
)


def test_missing_mlflow_connection_names_it_and_says_how_to_add_it() -> None:
    with pytest.raises(MissingConnection) as caught:
        MlflowConnectionHook("mlflow_nowhere").get_conn()
    message = str(caught.value)
    assert "'mlflow_nowhere'" in message
    assert "airflow connections add mlflow_nowhere" in message
    assert "AIRFLOW_CONN_MLFLOW_NOWHERE" in message


def test_missing_slack_connection_names_it() -> None:
    with pytest.raises(MissingConnection, match=r"'slack_nowhere'.*Slack bot token"):
        build_runtime(mlflow_conn_id=None, slack_conn_id="slack_nowhere")


def test_connections_from_the_environment_secrets_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PC_MLFLOW", "https://mlflow.example:8443/tracking")
    monkeypatch.setenv(
        "AIRFLOW_CONN_PC_SLACK",
        '{"conn_type": "prodcontrol_slack", "password": "xoxb-1", '
        '"extra": {"base_url": "http://127.0.0.1:9/api/"}}',
    )
    assert MlflowConnectionHook("pc_mlflow").get_conn() == "https://mlflow.example:8443/tracking"
    rt = build_runtime(mlflow_conn_id="pc_mlflow", slack_conn_id="pc_slack")
    assert rt.settings.mlflow_tracking_uri == "https://mlflow.example:8443/tracking"
    assert rt.settings.slack_bot_token is not None
    assert rt.settings.slack_bot_token.get_secret_value() == "xoxb-1"
    assert rt.settings.slack_base_url == "http://127.0.0.1:9/api/"


def test_slack_connection_without_a_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PC_SLACK_EMPTY", '{"conn_type": "prodcontrol_slack"}')
    with pytest.raises(MissingConnection, match="password field"):
        SlackConnectionHook("pc_slack_empty").get_conn()
