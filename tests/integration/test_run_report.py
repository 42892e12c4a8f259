"""One Evidently report per control run (issue 19): bounded in bytes, hashed, served, pruned.

A real check of the example high-tier model (real MLflow server, real files, real Evidently)
stores one JSON and one gzip-compressed HTML for the whole run, well under 2 MB, with their
SHA-256 in the evidence; a rewritten report fails verification and is refused by the web page.
A second inventory built here reads only its declared columns from a wide Parquet file, and a
process that only measures never imports Evidently.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from test_checks_runner import CATALOG, EXAMPLES, model_entry, write_inventory

from prodcontrol.control.runs.checks import run_checks
from prodcontrol.evidence.integrity import artifact_problem, logged_artifacts
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.web.app import create_app

MAX_RUN_BYTES = 2_000_000
TOKEN = "report-reader"


def example_runtime(tmp_path: Path, uri: str) -> Runtime:
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=EXAMPLES,
        catalog_dir=CATALOG,
        mlflow_tracking_uri=uri,
        web_token=TOKEN,
    )
    return Runtime(settings)


def test_a_high_tier_run_stores_one_report_under_2mb(seeded_mlflow: str, tmp_path: Path) -> None:
    rt = example_runtime(tmp_path, seeded_mlflow)
    result = run_checks(rt, "fraud-detector")
    files = rt.store.artifacts_for(result.run_id)
    assert sorted(a.name for a in files) == [
        "run-report.evidently.html.gz",
        "run-report.evidently.json",
    ]
    assert all(a.verdict_id is None for a in files)  # the run's, not one control's
    assert sum(a.size_bytes for a in files) <= MAX_RUN_BYTES
    on_disk = [p for p in (rt.settings.artifact_dir / result.run_id).rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in on_disk) <= MAX_RUN_BYTES
    html = gzip.decompress(Path(next(a.path for a in files if a.name.endswith(".gz"))).read_bytes())
    assert b"<html" in html[:2000].lower() and len(html) > 1_000_000  # Evidently's full page
    # every data control's verdict carries the report's numbers next to its own
    drift = next(v for v in rt.store.verdicts_for(result.run_id) if v.control_id == "dataset-drift")
    # (the shipped tiers show the drifted columns and the 3 closest: sampling.columns: flagged)
    shown = drift.details.get("report_columns", {}).get("shown", list(drift.details["columns"]))
    assert shown and all("report_score" in drift.details["columns"][c] for c in shown)
    assert rt.store.verify().ok
    logged = [a for a in logged_artifacts(rt.store.events()) if a.run_id == result.run_id]
    assert sorted(a.name for a in logged) == sorted(a.name for a in files)
    assert [artifact_problem(a) for a in logged] == [None, None]


def test_a_rewritten_report_fails_verify_and_is_not_served(
    seeded_mlflow: str, tmp_path: Path
) -> None:
    rt = example_runtime(tmp_path, seeded_mlflow)
    result = run_checks(rt, "fraud-detector")
    report = next(a for a in rt.store.artifacts_for(result.run_id) if a.name.endswith(".gz"))
    with TestClient(create_app(rt)) as http:
        served = http.get(
            f"/runs/{result.run_id}/artifacts/{report.id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert served.status_code == 200
        assert served.headers["content-encoding"] == "gzip"
        assert served.headers["content-type"].startswith("text/html")
        assert "<html" in served.text[:2000].lower()  # the client decoded it, as a browser does

        # an attacker with write access to the state dir swaps in a friendlier report
        forged = b"<html><body>no drift at all</body></html>"
        Path(report.path).write_bytes(gzip.compress(forged))
        refused = http.get(
            f"/runs/{result.run_id}/artifacts/{report.id}",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
    assert refused.status_code == 409
    logged = next(a for a in logged_artifacts(rt.store.events()) if a.id == report.id)
    problem = artifact_problem(logged)
    assert problem is not None and "was changed" in problem


def test_only_declared_columns_are_read_from_parquet(seeded_mlflow: str, tmp_path: Path) -> None:
    """A newcomer's wide export: the model declares 3 features of 40 columns."""
    rng = np.random.default_rng(4)
    wide = {f"unused_{i}": rng.normal(size=3000) for i in range(35)}
    data = tmp_path / "inventory" / "data"
    data.mkdir(parents=True)
    for side in ("reference", "current"):
        frame = pd.DataFrame(
            {
                "amount": rng.lognormal(3, 1, 3000),
                "hour": rng.integers(0, 24, 3000),
                "channel": rng.choice(["web", "pos", "app"], 3000),
                "prediction": rng.random(3000),
                "is_fraud": rng.integers(0, 2, 3000),
                **wide,
            }
        )
        frame.to_parquet(data / f"{side}.parquet", index=False)
    entry = model_entry(
        "wide-model",
        "low",
        {
            "reference": {"type": "file", "path": "data/reference.parquet"},
            "current": {"type": "file", "path": "data/current.parquet"},
            "target_column": "is_fraud",
            "numerical": ["amount", "hour"],
            "categorical": ["channel"],
        },
    )
    inventory = write_inventory(tmp_path / "inventory", [entry])
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inventory,
        catalog_dir=CATALOG,
        mlflow_tracking_uri=seeded_mlflow,
    )
    rt = Runtime(settings)
    from prodcontrol.control.runs.checks import read_columns

    wanted = read_columns(rt, "wide-model")
    assert wanted == ["amount", "hour", "channel", "prediction", "is_fraud"]
    spec = rt.config.model("wide-model").data
    assert spec is not None
    loaded = rt.datasets.load(spec.reference, now=rt.clock.now(), columns=wanted)
    assert loaded.columns == ["amount", "hour", "channel", "prediction", "is_fraud"]
    # without a contract every column is read, as before
    assert len(rt.datasets.load(spec.reference, now=rt.clock.now()).columns) == 40


def test_measuring_never_imports_evidently() -> None:
    code = (
        "import sys\n"
        "import prodcontrol.control.runs.checks, prodcontrol.runtime, prodcontrol.cli\n"
        "from prodcontrol.adapters.evidently import EvidentlyChecker\n"
        "assert 'evidently' not in sys.modules, 'evidently imported before any report'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
