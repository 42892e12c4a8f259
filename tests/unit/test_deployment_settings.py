"""What a deployment carries to its workers: the non-secret settings, never a secret; and a run
whose evidence database is not the deployment's refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcontrol.errors import UsageError
from prodcontrol.orchestration.deployment_settings import (
    check_database,
    database_label,
    job_env,
    withheld,
)
from prodcontrol.orchestration.runtimes import RuntimeRef, resolve
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_paths_travel_absolute_and_secrets_stay_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(
        state_dir=Path("state"),
        inventory_dir=Path("inv"),
        slack_bot_token="xoxb-secret",
        web_token="web-secret",
        web_trusted_proxies=["10.0.0.5/32", "10.1.0.0/16"],
        retention_days=400,
    )
    env = job_env(settings)
    assert env["PRODCONTROL_STATE_DIR"] == str(tmp_path / "state")
    assert env["PRODCONTROL_INVENTORY_DIR"] == str(tmp_path / "inv")
    assert env["PRODCONTROL_DATABASE_URL"] == f"sqlite:///{tmp_path / 'state' / 'evidence.db'}"
    assert env["PRODCONTROL_MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"
    assert env["PRODCONTROL_WEB_TRUSTED_PROXIES"] == "10.0.0.5/32,10.1.0.0/16"
    assert env["PRODCONTROL_RETENTION_DAYS"] == "400"
    assert "secret" not in repr(env)
    assert withheld(settings) == ["PRODCONTROL_SLACK_BOT_TOKEN", "PRODCONTROL_WEB_TOKEN"]


def test_a_database_url_with_a_password_is_left_to_the_worker() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://pc:hunter2@db.internal:5432/evidence",
        mlflow_tracking_uri="https://bot:tok@mlflow.internal",
    )
    env = job_env(settings)
    assert "PRODCONTROL_DATABASE_URL" not in env
    assert "PRODCONTROL_MLFLOW_TRACKING_URI" not in env
    assert "hunter2" not in repr(env) and "tok@" not in repr(env)
    assert withheld(settings) == ["PRODCONTROL_DATABASE_URL", "PRODCONTROL_MLFLOW_TRACKING_URI"]
    assert "hunter2" not in database_label(settings)


def test_a_worker_without_the_settings_refuses_instead_of_making_a_new_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployer = Settings(state_dir=tmp_path / "team-state")
    expected = database_label(deployer)
    monkeypatch.chdir(tmp_path)  # a worker started here with no PRODCONTROL_* at all
    with pytest.raises(UsageError) as refused:
        resolve(RuntimeRef(inventory=str(ROOT / "examples"), database=expected))
    message = str(refused.value)
    assert expected in message and "PRODCONTROL_DATABASE_URL" in message
    assert not (tmp_path / ".prodcontrol" / "evidence.db").exists()
    check_database(expected, deployer)  # the deployer's own settings pass


def test_a_password_never_shows_in_the_refusal() -> None:
    deployer = Settings(database_url="postgresql+psycopg://pc:hunter2@db:5432/evidence")
    worker = Settings(database_url="postgresql+psycopg://pc:hunter2@other:5432/evidence")
    with pytest.raises(UsageError) as refused:
        check_database(database_label(deployer), worker)
    assert "hunter2" not in str(refused.value) and "other:5432" in str(refused.value)


def test_a_signing_key_given_inline_stays_home_and_key_paths_travel_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    inline = Settings(evidence_signing_key=pem, evidence_anchor_file=Path("anchors.jsonl"))
    env = job_env(inline)
    assert "PRODCONTROL_EVIDENCE_SIGNING_KEY" not in env and "PRIVATE" not in repr(env)
    assert "PRODCONTROL_EVIDENCE_SIGNING_KEY" in withheld(inline)
    assert env["PRODCONTROL_EVIDENCE_ANCHOR_FILE"] == str(tmp_path / "anchors.jsonl")
    by_path = job_env(Settings(evidence_signing_key="keys/evidence.pem"))
    assert by_path["PRODCONTROL_EVIDENCE_SIGNING_KEY"] == str(tmp_path / "keys" / "evidence.pem")
