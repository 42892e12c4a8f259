"""``prodcontrol check`` through the CLI against the seeded real MLflow server."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prodcontrol.cli import output
from prodcontrol.cli.app import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def check_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings through the environment only, as a user would set them; private state dir."""
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRODCONTROL_INVENTORY_DIR", str(ROOT / "examples"))
    monkeypatch.setenv("PRODCONTROL_CATALOG_DIR", str(ROOT / "control_catalog"))
    monkeypatch.setattr(output.console, "_width", 200)
    return tmp_path


def test_check_fraud_detector_json(
    seeded_mlflow: str,
    check_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRODCONTROL_MLFLOW_TRACKING_URI", seeded_mlflow)
    code = run(["check", "fraud-detector", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 1 == result["exit_code"]
    assert (result["model"], result["version"], result["tier"]) == ("fraud-detector", "2", "high")
    verdicts = {v["control"]: v for v in result["verdicts"]}
    assert verdicts["dataset-drift"]["verdict"] == "fail"
    assert verdicts["performance-vs-baseline"]["verdict"] == "fail"
    assert verdicts["ownership-readiness"]["verdict"] == "pass"
    assert Path(verdicts["dataset-drift"]["artifact"]).is_file()
    assert result["blocking"] and result["mlflow_run_id"]
    assert {f["control"] for f in result["findings"]} >= {"dataset-drift", "prediction-drift"}


def test_check_table_and_unknown_model(
    seeded_mlflow: str,
    check_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PRODCONTROL_MLFLOW_TRACKING_URI", seeded_mlflow)
    assert run(["check", "churn-classifier", "--wide"]) == 0
    out = capsys.readouterr().out
    for word in ("control", "verdict", "threshold", "artifact", "reason", "dataset-drift", "pass"):
        assert word in out
    monkeypatch.setattr(output.console, "_width", 80)
    assert run(["check", "fraud-detector"]) == 1
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "warn/fail" in out and "0.1/0.3" in out and "reports: " in out
    assert run(["check", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "fraud-detector" in err
    assert run(["check", "pricing-experiment"]) == 2
    assert "experimentation" in capsys.readouterr().err
