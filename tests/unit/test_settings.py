"""Settings: toml + environment, secrets only from the environment, errors that name the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcontrol.errors import ConfigError
from prodcontrol.settings import Settings, load_settings


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(tmp_path / "prodcontrol.toml"))
    return tmp_path


def test_defaults_put_state_under_the_state_dir(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path / "state")
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'state' / 'evidence.db'}"
    assert settings.resolved_tracking_uri.endswith("state/mlflow.db")
    assert settings.retention_days == 183
    assert settings.resolved_catalog_dir().joinpath("controls.yaml").is_file()


def test_toml_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prodcontrol.toml").write_text('state_dir = "from-toml"\nretention_days = 400\n')
    monkeypatch.setenv("PRODCONTROL_RETENTION_DAYS", "200")
    settings = load_settings()
    assert settings.state_dir == Path("from-toml")
    assert settings.retention_days == 200


def test_secret_in_the_file_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "prodcontrol.toml").write_text('state_dir = "s"\nslack_bot_token = "xoxb-1"\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    (problem,) = info.value.problems
    assert problem.line == 2
    assert "PRODCONTROL_SLACK_BOT_TOKEN" in problem.message


def test_secret_from_environment_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODCONTROL_SLACK_BOT_TOKEN", "xoxb-secret-value")
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-secret-value"
    assert "xoxb-secret-value" not in repr(settings)
    assert "xoxb-secret-value" not in str(settings.model_dump())


def test_unknown_key_and_variable_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prodcontrol.toml").write_text('stat_dir = "typo"\n')
    monkeypatch.setenv("PRODCONTROL_DATABSE_URL", "sqlite://")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "stat_dir" in text and "known settings" in text
    assert "PRODCONTROL_DATABSE_URL" in text


def test_bad_toml_syntax_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "prodcontrol.toml").write_text('state_dir = "ok"\nretention_days = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems[0].line == 2


def test_readme_settings_table_lists_every_setting() -> None:
    """Every setting is in the README's table, with the default the code has."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", table))
    missing = sorted(set(Settings.model_fields) - named)
    assert missing == [], f"README 'Settings' lacks: {missing}"
    assert Settings.model_fields["web_base_url"].default in table
