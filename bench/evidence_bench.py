"""Evidence at scale: how long verify, export and offline pack verification take.

A SQLite evidence store is filled through the real store API with ``--runs`` control runs of
the example fleet (11 verdicts, 2 report files each, findings where a control fails), then:

* ``store verify``: the chain plus every table row against its newest logged record;
* ``evidence verify``: that, plus the SHA-256 of every report file;
* ``export``: collect a whole-fleet pack and write the zip (index.html, jsonl, reports);
* ``pack verify``: the zip checked offline.

Run ``python -m bench.evidence_bench`` (``--quick`` for 300 runs).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.evidence import ArtifactIn, FindingIn, VerdictIn
from prodcontrol.evidence.integrity import verify_evidence
from prodcontrol.evidence.pack import Scope, collect, verify_pack, write_pack
from prodcontrol.testing import ManualClock
from prodcontrol.web.render import render_pack_index

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def fill(store: SqlEvidenceStore, clock: ManualClock, runs: int, files: Path) -> None:
    config = load_config(default_catalog_dir(), ROOT / "examples")
    models = [
        config.model(n) for n in ("churn-classifier", "credit-limit-regressor", "fraud-detector")
    ]
    for i in range(runs):
        entry = models[i % len(models)]
        clock.advance(timedelta(hours=1))
        run = store.start_run(entry.name, "1", entry.tier, "bench")
        verdicts, findings = [], []
        for control in config.controls_for(entry):
            t = control.thresholds
            value = t.fail * ((i * 7 + len(control.id)) % 13) / 10
            result = "fail" if value >= t.fail else "warn" if t.warn and value >= t.warn else "pass"
            verdicts.append(
                VerdictIn(
                    control_id=control.id,
                    kind=control.kind,
                    verdict=result,
                    value=value,
                    warn=t.warn,
                    fail=t.fail,
                    direction=t.direction,
                    reason="bench",
                )
            )
            if result == "fail":
                findings.append(FindingIn(control_id=control.id, severity="high", blocking=True))
        out = files / run.id
        out.mkdir(parents=True)
        (out / "drift.html").write_text(f"<html><body>report {i}</body></html>" * 200)
        (out / "drift.json").write_text(json.dumps({"run": i, "values": list(range(200))}))
        artifacts = [
            ArtifactIn.from_file(out / "drift.html", name="drift.html", media_type="text/html"),
            ArtifactIn.from_file(
                out / "drift.json", name="drift.json", media_type="application/json"
            ),
        ]
        store.finish_run(
            run.id, "failed" if findings else "succeeded", verdicts, artifacts, findings
        )


def measure(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        url = f"sqlite:///{base / 'evidence.db'}"
        upgrade(url)
        clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        store = SqlEvidenceStore(url, clock=clock)
        _, seeded = timed(lambda: fill(store, clock, runs, base / "artifacts"))
        events = store.chain_head()[0]
        report, store_verify = timed(store.verify)
        assert report.ok, report
        full, evidence_verify = timed(lambda: verify_evidence(store))
        assert full.ok, full.first_broken
        config = load_config(default_catalog_dir(), ROOT / "examples")
        contents, collected = timed(lambda: collect(store, config, Scope(), clock.now(), []))
        pack = base / "pack.zip"
        _, written = timed(lambda: write_pack(contents, pack, render_pack_index))
        data = pack.read_bytes()
        checked, pack_verify = timed(lambda: verify_pack(data))
        assert checked.ok, checked.first_broken
        store.close()
        return {
            "runs": runs,
            "events": events,
            "rows": report.rows_checked,
            "artifacts": full.artifacts_checked,
            "pack_mb": round(len(data) / 1e6, 2),
            "seconds": {
                "fill": round(seeded, 2),
                "store_verify": round(store_verify, 2),
                "evidence_verify": round(evidence_verify, 2),
                "export": round(collected + written, 2),
                "pack_verify": round(pack_verify, 2),
            },
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence_bench")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="300 runs")
    args, _ = parser.parse_known_args(argv)
    runs = 300 if args.quick else args.runs
    result = measure(runs) | {"machine": platform.platform(), "python": platform.python_version()}
    s = result["seconds"]
    table = (
        "| runs | log entries | rows | report files | store verify | evidence verify | export | "
        "pack verify | pack size |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {runs:,} | {result['events']:,} | {result['rows']:,} | {result['artifacts']:,} | "
        f"{s['store_verify']} s | {s['evidence_verify']} s | {s['export']} s | "
        f"{s['pack_verify']} s | {result['pack_mb']} MB |\n"
    )
    print(table)
    RESULTS.mkdir(exist_ok=True)
    name = "evidence_bench_quick" if args.quick else "evidence_bench"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
