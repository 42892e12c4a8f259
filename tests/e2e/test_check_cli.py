"""``prodcontrol check`` through the CLI against the seeded real MLflow server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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
    report = verdicts["dataset-drift"]["artifact"]  # the snapshot the web page renders
    assert report.endswith("run-report.evidently.snapshot.json.gz") and Path(report).is_file()
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
    assert "report page: http://127.0.0.1:8000/runs/" in out  # web_base_url: renders it
    assert run(["check", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "fraud-detector" in err
    assert run(["check", "pricing-experiment"]) == 2
    assert "experimentation" in capsys.readouterr().err


@pytest.fixture
def own_mlflow(tmp_path: Path) -> Iterator[str]:
    """A fresh ``mlflow server`` of its own: the session one holds other stores' anchors."""
    from mlflow_helpers import MlflowServer

    server = MlflowServer(tmp_path / "mlflow")
    (tmp_path / "mlflow").mkdir()
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


def test_the_genai_example_inventory_checks_end_to_end(
    own_mlflow: str,
    check_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """examples/genai as its README says: seed MLflow with the script, validate, check,
    then find it in the framework view and the evidence pack."""
    import subprocess
    import sys

    mlflow_uri = own_mlflow

    seeded = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "genai" / "seed_mlflow.py"), mlflow_uri],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    monkeypatch.setenv("PRODCONTROL_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("PRODCONTROL_INVENTORY_DIR", str(ROOT / "examples" / "genai"))
    assert run(["validate"]) == 0
    capsys.readouterr()
    code = run(["check", "support-assistant", "--json"])
    result = json.loads(capsys.readouterr().out)
    verdicts = {v["control"]: v for v in result["verdicts"]}
    assert (verdicts["genai-groundedness"]["verdict"], verdicts["genai-groundedness"]["value"]) == (
        "warn",
        35 / 40,
    )
    assert (verdicts["genai-safety"]["verdict"], verdicts["genai-safety"]["value"]) == ("pass", 1.0)
    assert verdicts["performance-vs-baseline"]["verdict"] == "pass"
    assert code == result["exit_code"] and {f["control"] for f in result["findings"]} >= {
        "genai-groundedness"
    }

    # the framework view and the evidence pack carry the GenAI controls and their clauses
    capsys.readouterr()
    assert run(["evidence", "frameworks", "--framework", "nist-ai-rmf", "--json"]) == 0
    rows = {r["clause"]: r for r in json.loads(capsys.readouterr().out)}
    assert "genai-safety" in rows["MEASURE-2.6"]["controls"]
    assert rows["MEASURE-2.6"]["outcome"] == "pass" and not rows["MEASURE-2.6"]["gap"]
    assert rows["MEASURE-2.5"]["outcome"] == "warn"
    pack = check_env / "pack.zip"
    assert run(["evidence", "export", "--out", str(pack), "--json"]) == 0
    import zipfile

    with zipfile.ZipFile(pack) as archive:
        index = archive.read("index.html").decode()
    for text in ("genai-groundedness", "genai-safety", "MEASURE-2.6", "support-assistant"):
        assert text in index, text
