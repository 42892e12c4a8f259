"""One Evidently report per control run (issue 19): bounded in bytes, hashed, rendered, pruned.

A real check of the example high-tier model (real MLflow server, real files, real Evidently)
stores the results JSON and the full Evidently snapshot (gzip-compressed) for the whole run, well
under 2 MB, with their SHA-256 in the evidence, and no HTML: the web page renders the report from
the snapshot when it is opened, after checking its hash; a rewritten snapshot fails verification
and is refused (409), never rendered. Runs recorded with an ``.html.gz`` are still served.
A second inventory built here reads only its declared columns from a wide Parquet file, and a
process that only measures never imports Evidently.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import Report
from fastapi.testclient import TestClient
from test_checks_runner import CATALOG, EXAMPLES, model_entry, write_inventory

from prodcontrol.adapters.evidently_snapshot import render_html
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.evidence import ArtifactIn
from prodcontrol.evidence.integrity import VerifiedFile, artifact_problem, logged_artifacts
from prodcontrol.evidence.records import Artifact
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
        "run-report.evidently.json",
        "run-report.evidently.snapshot.json.gz",
    ]
    assert all(a.verdict_id is None for a in files)  # the run's, not one control's
    assert sum(a.size_bytes for a in files) <= MAX_RUN_BYTES
    on_disk = [p for p in (rt.settings.artifact_dir / result.run_id).rglob("*") if p.is_file()]
    assert sorted(p.name for p in on_disk) == sorted(a.name for a in files)  # no HTML written
    assert sum(p.stat().st_size for p in on_disk) <= MAX_RUN_BYTES
    snapshot = json.loads(gzip.decompress(Path(_snapshot(rt, result.run_id).path).read_bytes()))
    assert snapshot["widgets"] and snapshot["metric_results"]  # the full form: widgets too
    # every data control's verdict carries the report's numbers next to its own
    drift = next(v for v in rt.store.verdicts_for(result.run_id) if v.control_id == "dataset-drift")
    # (the shipped tiers show the drifted columns and the 3 closest: sampling.columns: flagged)
    shown = drift.details.get("report_columns", {}).get("shown", list(drift.details["columns"]))
    assert shown and all("report_score" in drift.details["columns"][c] for c in shown)
    assert rt.store.verify().ok
    logged = [a for a in logged_artifacts(rt.store.events()) if a.run_id == result.run_id]
    assert sorted(a.name for a in logged) == sorted(a.name for a in files)
    assert [artifact_problem(a) for a in logged] == [None, None]


def _snapshot(rt: Runtime, run_id: str) -> Artifact:
    return next(a for a in rt.store.artifacts_for(run_id) if a.name.endswith(".snapshot.json.gz"))


def test_the_web_page_renders_the_report_from_the_snapshot_and_refuses_a_rewritten_one(
    seeded_mlflow: str, tmp_path: Path
) -> None:
    rt = example_runtime(tmp_path, seeded_mlflow)
    result = run_checks(rt, "fraud-detector")
    report = _snapshot(rt, result.run_id)
    drift = next(v for v in rt.store.verdicts_for(result.run_id) if v.control_id == "dataset-drift")
    address = f"/runs/{result.run_id}/artifacts/{report.id}"
    with TestClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        run_page = http.get(f"/runs/{result.run_id}")
        assert run_page.status_code == 200
        assert f'<iframe class="report" sandbox="allow-scripts" src="{address}"' in run_page.text

        served = http.get(address)
        assert served.status_code == 200
        assert served.headers["content-encoding"] == "gzip"  # the client decoded it
        assert served.headers["content-type"].startswith("text/html")
        assert served.headers["content-security-policy"] == "sandbox allow-scripts"
        page = served.text
        assert "<html" in page[:2000].lower() and len(page) > 1_000_000  # Evidently's full page
        # each column the report shows (sampling.columns: flagged) has its drift widget and score
        shown = drift.details.get("report_columns", {}).get("shown", list(drift.details["columns"]))
        assert shown
        for column in shown:
            score = drift.details["columns"][column]["report_score"]
            assert f"Drift in column '{column}'" in page
            assert f"Drift score: {round(score, 3)}" in page

        plain = http.get(address, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == page
        raw = http.get(address, params={"raw": 1})
        assert raw.content == Path(report.path).read_bytes()
        pack = http.get("/pack.zip", params={"model": "fraud-detector"})
        assert pack.status_code == 200  # the pack carries the snapshot as recorded, no HTML
        with zipfile.ZipFile(io.BytesIO(pack.content)) as archive:
            members = [n for n in archive.namelist() if n.startswith(f"artifacts/{result.run_id}")]
            assert sorted(n.rsplit("/", 1)[1].split("-", 1)[1] for n in members) == sorted(
                f.name for f in rt.store.artifacts_for(result.run_id)
            )
            member = next(n for n in members if n.endswith(".snapshot.json.gz"))
            assert archive.read(member) == raw.content

        # an attacker with write access to the state dir makes the drift go away: still valid
        # gzip-compressed JSON that Evidently would render, one number changed
        stored = json.loads(gzip.decompress(Path(report.path).read_bytes()))
        column = shown[0]
        result_id, value_drift = next(
            (k, r)
            for k, r in stored["metric_results"].items()
            if r["display_name"] == f"Value drift for {column}"
        )
        value_drift["value"] = 0.0
        forged = gzip.compress(json.dumps(stored).encode(), mtime=0)
        Path(report.path).write_bytes(forged)
        refused = http.get(address)
        refused_raw = http.get(address, params={"raw": 1})
        refused_pack = http.get("/pack.zip", params={"model": "fraud-detector"})
    assert refused.status_code == 409 and refused_raw.status_code == 409
    assert refused_pack.status_code == 409 and "fails verify" in refused_pack.text
    assert "Drift in column" not in refused.text  # nothing of the report, not even cached
    assert "was changed" in refused.text and report.sha256[:12] in refused.text
    logged = next(a for a in logged_artifacts(rt.store.events()) if a.id == report.id)
    problem = artifact_problem(logged)
    assert problem is not None and "was changed" in problem
    # the forgery is a snapshot Evidently renders: only the hash check keeps it off the page
    unchecked = VerifiedFile(
        artifact_id=report.id, name=report.name, path=report.path, sha256="-", data=forged
    )
    assert f"Drift in column '{column}'" in render_html(unchecked)
    assert result_id in stored["top_level_metrics"]


def test_a_run_recorded_with_an_html_gz_report_is_still_served(tmp_path: Path) -> None:
    """Runs recorded before on-demand rendering kept the HTML, gzip-compressed."""
    rt = example_runtime(tmp_path, "http://127.0.0.1:9")  # MLflow is never asked
    html = b"<!doctype html><html><body><h1>Value drift for amount</h1></body></html>"
    old = tmp_path / "old" / "run-report.evidently.html.gz"
    old.parent.mkdir()
    old.write_bytes(gzip.compress(html, mtime=0))
    run = rt.store.start_run("fraud-detector", "1", "high", "cli")
    artifact = ArtifactIn.from_file(old, name=old.name, media_type="text/html")
    rt.store.finish_run(run.id, "succeeded", [], [artifact], [])
    stored = rt.store.artifacts_for(run.id)[0]
    with TestClient(create_app(rt)) as http:
        http.headers["Authorization"] = f"Bearer {TOKEN}"
        run_page = http.get(f"/runs/{run.id}")
        served = http.get(f"/runs/{run.id}/artifacts/{stored.id}")
        plain = http.get(
            f"/runs/{run.id}/artifacts/{stored.id}", headers={"Accept-Encoding": "identity"}
        )
        old.write_bytes(gzip.compress(html.replace(b"drift", b"calm"), mtime=0))
        refused = http.get(f"/runs/{run.id}/artifacts/{stored.id}")
    assert f'src="/runs/{run.id}/artifacts/{stored.id}"' in run_page.text
    assert served.status_code == 200 and served.headers["content-encoding"] == "gzip"
    assert served.headers["content-type"].startswith("text/html")
    assert served.content == html and plain.content == html
    assert refused.status_code == 409


def test_the_stored_snapshot_renders_the_page_save_html_wrote(tmp_path: Path) -> None:
    """Every metric kind a run report holds survives the snapshot: the page rendered from the
    stored file is Evidently's own page (up to the random ids Evidently draws per render)."""
    from evidently.core.report import Snapshot

    from prodcontrol.adapters.evidently_report import _evidently_dataset, _metric, write_report
    from prodcontrol.ports import ReportMetric

    rng = np.random.default_rng(11)

    def side(shift: float) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "amount": rng.lognormal(3 + shift, 1, 2000),
                "hour": rng.integers(0, 24, 2000).astype(float),
                "channel": rng.choice(["web", "pos", "app"], 2000),
            }
        )
        frame.loc[rng.random(2000) < 0.05, "amount"] = np.nan
        return frame

    specs = [
        ReportMetric(metric="value_drift", args={"column": c, "method": m, "threshold": 0.1})
        for c, m in (("amount", "wasserstein"), ("hour", "ks"), ("channel", "jensenshannon"))
    ] + [
        ReportMetric(metric="missing", args={"columns": ["amount", "hour", "channel"]}),
        ReportMetric(metric="missing_column", args={"column": "amount"}),
        ReportMetric(metric="column_count"),
        ReportMetric(metric="column_count", args={"column_type": "numerical"}),
        ReportMetric(metric="out_range", args={"column": "hour", "left": 0, "right": 20}),
        ReportMetric(metric="out_list", args={"column": "channel", "values": ["web", "pos"]}),
    ]
    report = Report([_metric(s) for s in specs], include_tests=True)
    snapshot = report.run(
        current_data=_evidently_dataset(side(0.5)), reference_data=_evidently_dataset(side(0))
    )
    files = write_report(snapshot, str(tmp_path))
    stored = Path(files[1].path).read_bytes()
    encoded = json.loads(gzip.decompress(stored))
    assert json.dumps(encoded, sort_keys=True) == json.dumps(
        json.loads(snapshot.dumps()), sort_keys=True
    )  # the fast encoding is Evidently's full form
    assert write_report(snapshot, str(tmp_path / "again"))[1].sha256 == files[1].sha256

    verified = VerifiedFile(
        artifact_id="a", name=files[1].name, path=files[1].path, sha256=files[1].sha256, data=stored
    )
    page = render_html(verified)
    reloaded = Snapshot.load_dict(encoded)
    assert len(reloaded._widgets) == len(snapshot._widgets) > len(specs)
    assert _without_ids(page) == _without_ids(snapshot.get_html_str(as_iframe=False))
    assert page.count('"type": "big_graph"') >= 3  # the plotly figures came back


def _without_ids(page: str) -> str:
    page = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", page)
    return re.sub(r"metric_[0-9a-f]{32}", "metric_<id>", page)


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
        "import prodcontrol.web.app\n"
        "from prodcontrol.adapters.evidently import EvidentlyChecker\n"
        "assert 'evidently' not in sys.modules, 'evidently imported before any report'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
