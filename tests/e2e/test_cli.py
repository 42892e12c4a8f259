"""The CLI end to end: through Typer's runner in-process, and through the installed script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prodcontrol.cli import app, output
from prodcontrol.cli.app import run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir and settings file, so tests never touch the checkout's state."""
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{EXAMPLES}"\n')
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setattr(output.console, "_width", 200)  # a wide terminal: no cut headings
    return tmp_path


def script() -> str:
    found = Path(sys.executable).parent / "prodcontrol"
    if found.exists():
        return str(found)
    which = shutil.which("prodcontrol")
    assert which, "the prodcontrol console script is not installed in this environment"
    return which


def test_models_list_json_through_typer_runner(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    tiers = {row["tier"] for row in rows}
    assert {"low", "medium", "high"} <= tiers
    for row in rows:
        assert set(row) >= {"model", "tier", "stage", "serving_alias", "owners", "readiness"}
        if row["stage"] == "production":
            assert row["readiness"] == "ready"


def test_models_list_table(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from prodcontrol.cli import output

    monkeypatch.setattr(output.console, "_width", 80)
    result = CliRunner().invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "readiness" in result.stdout and "5/5" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    wide = CliRunner().invoke(app, ["models", "list", "--wide"])
    assert "champion" in wide.stdout and "5/5: amara" in wide.stdout


def test_catalog_show_lists_every_control_with_clauses(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "show", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {c["kind"] for c in data["controls"]} >= {
        "drift",
        "data_quality",
        "performance",
        "freshness",
        "ownership",
        "review_due",
    }
    assert all(c["clauses"] for c in data["controls"])
    assert [t["tier"] for t in data["tiers"]] == ["low", "medium", "high"]


def test_validate_and_db_upgrade_in_process(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", "--inventory", str(EXAMPLES)]) == 0
    assert "valid" in capsys.readouterr().out
    assert run(["db", "upgrade", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["revision"]
    assert (cli_env / "state" / "evidence.db").is_file()


def test_unknown_model_directory_is_a_usage_error(cli_env: Path) -> None:
    assert run(["validate", "--inventory", str(cli_env / "missing")]) == 2


def test_installed_script_version_and_validate(cli_env: Path) -> None:
    env = dict(os.environ)
    version = subprocess.run(
        [script(), "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("prodcontrol ")
    ok = subprocess.run(
        [script(), "validate", "--inventory", str(EXAMPLES)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


def test_installed_script_reports_every_problem_with_file_and_line(
    cli_env: Path,
) -> None:
    bad = cli_env / "inventory"
    shutil.copytree(EXAMPLES, bad)
    models = bad / "models.yaml"
    text = models.read_text()
    text = text.replace("tier: high", "tier: extreme", 1).replace(
        "stage: production", "stage: prod", 1
    )
    models.write_text(text)
    result = subprocess.run(
        [script(), "validate", "--inventory", str(bad)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(models))]
    assert len(lines) >= 2, result.stderr
    assert any("unknown tier 'extreme'" in line for line in lines)
    assert any("stage" in line and "'production'" in line for line in lines)
    for line in lines:
        where = line.split(": ", 1)[0]
        assert where.rsplit(":", 1)[1].isdigit(), line
    assert "Traceback" not in result.stderr


def test_database_unreachable_exits_3(cli_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODCONTROL_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert run(["db", "upgrade"]) == 3
