"""The performance example inventory (``examples/performance``) runs as its README tells: seed
the embedded MLflow store with ``seed_mlflow``, ``validate``, ``check`` each model. Nothing in it
errors; the controls say what the example's data was built to show."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from prodcontrol.cli import output
from prodcontrol.cli.app import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    inventory = tmp_path / "performance"
    shutil.copytree(ROOT / "examples" / "performance", inventory)
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRODCONTROL_INVENTORY_DIR", str(inventory))
    monkeypatch.setattr(output.console, "_width", 200)
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import Settings
    from prodcontrol.testing.seed import seed_mlflow

    rt = Runtime(Settings())
    seed_mlflow(rt.settings.resolved_tracking_uri, rt.config)
    return inventory


def _verdicts(name: str, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    run(["check", name, "--json"])
    result = json.loads(capsys.readouterr().out)
    return {v["control"]: v for v in result["verdicts"]}


def test_the_performance_example_runs_without_error(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate"]) == 0, capsys.readouterr().err
    loans = _verdicts("loan-default-scorer", capsys)
    assert {c: v["reason"] for c, v in loans.items() if v["verdict"] == "error"} == {}
    assert loans["performance-estimated"]["verdict"] in ("pass", "warn")
    realized = loans["performance-realized"]
    assert realized["verdict"] == "fail"
    assert "worst segment branch=south" in str(realized["reason"])
    assert "1 segment(s) under 100 rows not judged" in str(realized["reason"])
    demand = _verdicts("demand-forecaster", capsys)
    assert {c: v["reason"] for c, v in demand.items() if v["verdict"] == "error"} == {}
    assert demand["performance-estimated"]["verdict"] == "fail"  # MAE up ~15 %, no label needed
    assert demand["performance-realized"]["verdict"] == "fail"  # and the sales confirm it
    assert "worst segment store=" in str(demand["dataset-drift"]["reason"])
