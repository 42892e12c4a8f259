"""What storing the run's one Evidently report costs per run: HTML at run time vs the snapshot.

A high-tier-like run report (the metrics a high-tier run of a model with 10 numeric and 5
categorical features and a prediction asks for: 16 ``ValueDrift``, ``DatasetMissingValueCount``,
15 ``MissingValueCount``, 3 ``ColumnCount``, 10 ``OutRangeValueCount``, 5 ``OutListValueCount``)
is computed once on a seeded 50,000-row sample a side, then written repeatedly, alternating:

* ``before``: what ``write_report`` did until on-demand rendering: the results JSON
  (``save_json``), ``save_html`` (about 4 MB), the HTML gzip-compressed, the HTML deleted;
* ``after``: what it does now (:func:`prodcontrol.adapters.evidently_report.write_report`): the
  results JSON and the full snapshot gzip-compressed, no HTML;
* ``render``: what the web page pays when somebody opens the report (once per snapshot; the page
  is then cached in memory): the snapshot loaded and rendered, the page gzip-compressed.

CPU seconds are ``time.process_time()`` of each write in this one process (no child
processes); the Evidently report itself is not timed. Bytes are the files left on disk.

Run ``python -m bench.report_write_bench [--quick] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import evidently
import numpy as np
import pandas as pd
from evidently import Report

from prodcontrol.adapters.evidently_report import _evidently_dataset, _metric, write_report
from prodcontrol.adapters.evidently_snapshot import deterministic_gzip, render_html
from prodcontrol.evidence.integrity import VerifiedFile
from prodcontrol.ports import ReportMetric

RESULTS = Path(__file__).parent / "results"
NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]


def frames(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def side(shift: float) -> pd.DataFrame:
        data: dict[str, Any] = {
            c: rng.normal(shift * (i % 3), 1 + i / 10, rows) for i, c in enumerate(NUMERIC)
        }
        data |= {
            c: rng.choice([f"v{k}" for k in range(3 + i)], rows) for i, c in enumerate(CATEGORICAL)
        }
        data["prediction"] = rng.random(rows) ** (1 + shift)
        frame = pd.DataFrame(data)
        frame.loc[rng.random(rows) < 0.01, "num_0"] = np.nan
        return frame

    return side(0.0), side(0.3)


def metrics() -> list[ReportMetric]:
    drift = [
        ReportMetric(metric="value_drift", args={"column": c, "method": m, "threshold": 0.1})
        for c, m in [(c, "wasserstein") for c in [*NUMERIC, "prediction"]]
        + [(c, "jensenshannon") for c in CATEGORICAL]
    ]
    features = [*NUMERIC, *CATEGORICAL]
    quality = [ReportMetric(metric="missing", args={"columns": features})]
    quality += [ReportMetric(metric="missing_column", args={"column": c}) for c in features]
    quality += [
        ReportMetric(metric="column_count"),
        ReportMetric(metric="column_count", args={"column_type": "numerical"}),
        ReportMetric(metric="column_count", args={"column_type": "categorical"}),
    ]
    quality += [
        ReportMetric(metric="out_range", args={"column": c, "left": -3.0, "right": 3.0})
        for c in NUMERIC
    ]
    quality += [
        ReportMetric(metric="out_list", args={"column": c, "values": ["v0", "v1", "v2"]})
        for c in CATEGORICAL
    ]
    return drift + quality


def write_before(snapshot: Any, out_dir: str) -> None:
    """``write_report`` as it was: JSON, HTML, the HTML gzip-compressed, the HTML deleted."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / "run-report.evidently.html"
    snapshot.save_json(str(folder / "run-report.evidently.json"))
    snapshot.save_html(str(html))
    with (
        html.open("rb") as raw,
        (folder / "run-report.evidently.html.gz").open("wb") as out,
        gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as packed,
    ):
        shutil.copyfileobj(raw, packed, 1 << 20)
    html.unlink()


def render_after(snapshot_file: Path) -> None:
    """What the web page does on the first request for a snapshot (hash check excluded)."""
    data = snapshot_file.read_bytes()
    verified = VerifiedFile(artifact_id="-", name="-", path="-", sha256="-", data=data)
    deterministic_gzip(render_html(verified).encode("utf-8"))


def timed(work: Callable[..., object], *args: object) -> float:
    start = time.process_time()
    work(*args)
    return time.process_time() - start


def measure(rows: int, repeat: int) -> dict[str, Any]:
    reference, current = frames(rows)
    specs = metrics()
    report = Report([_metric(s) for s in specs], include_tests=True)
    snapshot = report.run(
        current_data=_evidently_dataset(current), reference_data=_evidently_dataset(reference)
    )
    seconds: dict[str, list[float]] = {"before": [], "after": [], "render": []}
    sizes: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_before(snapshot, str(root / "warm-before"))  # first-call costs off the clock
        write_report(snapshot, str(root / "warm-after"))
        render_after(root / "warm-after" / "run-report.evidently.snapshot.json.gz")
        for i in range(repeat):
            before, after = root / f"before-{i}", root / f"after-{i}"
            seconds["before"].append(timed(write_before, snapshot, str(before)))
            seconds["after"].append(timed(write_report, snapshot, str(after)))
            snap = after / "run-report.evidently.snapshot.json.gz"
            seconds["render"].append(timed(render_after, snap))
        for side in ("before", "after"):
            sizes[side] = {p.name: p.stat().st_size for p in sorted((root / f"{side}-0").iterdir())}
    return {
        "rows": rows,
        "repeat": repeat,
        "metrics": len(specs),
        "cpu_seconds": {
            k: {"median": statistics.median(v), "min": min(v)} for k, v in seconds.items()
        },
        "runs": seconds,
        "bytes": sizes,
        "bytes_total": {k: sum(v.values()) for k, v in sizes.items()},
    }


def markdown(result: dict[str, Any]) -> str:
    cpu, total = result["cpu_seconds"], result["bytes_total"]
    lines = [
        f"Run report of {result['metrics']} metrics on {result['rows']:,} rows a side, "
        f"{result['repeat']} writes each (CPU s, median / min):",
        "",
        "| | CPU s per run (median) | min | files per run | bytes per run |",
        "|---|---:|---:|---|---:|",
    ]
    for side in ("before", "after"):
        files = ", ".join(f"`{n}` {b:,}" for n, b in result["bytes"][side].items())
        lines.append(
            f"| {side} | {cpu[side]['median']:.3f} | {cpu[side]['min']:.3f} | {files} | "
            f"{total[side]:,} |"
        )
    lines.append(
        f"| render on demand (first view) | {cpu['render']['median']:.3f} | "
        f"{cpu['render']['min']:.3f} | | |"
    )
    lines += ["", "```", json.dumps(result, indent=2), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_write_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, 3 writes")
    parser.add_argument("--repeat", type=int, default=7)
    args, _unknown = parser.parse_known_args(argv)
    rows, repeat = (5_000, 3) if args.quick else (50_000, args.repeat)
    result = measure(rows, repeat)
    result["machine"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "evidently": evidently.__version__,
        "processor": platform.processor() or platform.machine(),
    }
    text = markdown(result)
    print(text)
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "report_write_bench.md").write_text(text + "\n")
        (RESULTS / "report_write_bench.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
