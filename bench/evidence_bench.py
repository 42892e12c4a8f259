"""Evidence at scale: how long verify, export and offline pack verification take.

A SQLite evidence store is filled through the real store API with ``--runs`` control runs of
the example fleet (11 verdicts, 2 report files each, findings where a control fails), then:

* ``store verify``: the chain plus every table row against its newest logged record;
* ``evidence verify``: that, plus the SHA-256 of every report file;
* ``export``: collect a whole-fleet pack and write the zip (index.html, jsonl, reports);
* ``pack verify``: the zip checked offline.

Each size is measured twice: an unsigned store without anchors (the figures before issue 16),
and a signed store (Ed25519 head signature at every commit) that anchors its head to a file
after every run (``evidence_anchor_interval_s = 0``, the worst case; the default anchors at most
hourly), whose verify also checks the signatures and anchors and whose pack is signed. The
difference in ``fill`` per run is the cost of signing; ``anchor`` is the cost of anchoring.

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
from prodcontrol.evidence.anchor import FileAnchors, anchor_head
from prodcontrol.evidence.integrity import VerifyPolicy, verify_evidence
from prodcontrol.evidence.pack import Scope, collect, verify_pack, write_pack
from prodcontrol.evidence.signing import SigningKey, head_document, sign_head
from prodcontrol.testing import ManualClock
from prodcontrol.web.render import render_pack_index

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def fill(
    store: SqlEvidenceStore,
    clock: ManualClock,
    runs: int,
    files: Path,
    anchor: Callable[[], object] | None = None,
) -> float:
    """Fill the store; returns the seconds spent anchoring (after each run, when given)."""
    anchoring = 0.0
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
        if anchor is not None:
            anchoring += timed(anchor)[1]
    return anchoring


def measure(runs: int, signed: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        url = f"sqlite:///{base / 'evidence.db'}"
        upgrade(url)
        clock = ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
        key = SigningKey.generate() if signed else None
        store = SqlEvidenceStore(url, clock=clock, signer=key)
        sinks = [FileAnchors(base / "anchor-host" / "anchors.jsonl")] if signed else []
        anchor = (lambda: anchor_head(store, sinks, clock.now())) if signed else None
        anchoring, seeded = timed(lambda: fill(store, clock, runs, base / "artifacts", anchor))
        events = store.chain_head()[0]
        report, store_verify = timed(store.verify)
        assert report.ok, report
        trusted = [key.verify_key] if key else []
        policy = VerifyPolicy(now=clock.now())
        full, evidence_verify = timed(lambda: verify_evidence(store, sinks, trusted, policy))
        assert full.ok, full.first_broken
        assert full.signing.state == ("signed" if signed else "unsigned")
        config = load_config(default_catalog_dir(), ROOT / "examples")
        anchors = [a for sink in sinks for a in sink.read_anchors()]
        contents, collected = timed(lambda: collect(store, config, Scope(), clock.now(), anchors))
        pack = base / "pack.zip"
        _, written = timed(lambda: write_pack(contents, pack, render_pack_index, key))
        size = pack.stat().st_size
        checked, pack_verify = timed(lambda: verify_pack(pack, key.verify_key if key else None))
        assert checked.ok, checked.first_broken
        store.close()
        return {
            "runs": runs,
            "signed_and_anchored": signed,
            "events": events,
            "rows": report.rows_checked,
            "artifacts": full.artifacts_checked,
            "signatures": full.signing.signatures_checked,
            "anchors": full.anchors_checked,
            "pack_mb": round(size / 1e6, 2),
            "seconds": {
                "fill": round(seeded - anchoring, 2),
                "anchor": round(anchoring, 3),
                "store_verify": round(store_verify, 2),
                "evidence_verify": round(evidence_verify, 2),
                "export": round(collected + written, 2),
                "pack_verify": round(pack_verify, 2),
            },
            "ms_per_run": {
                "fill": round((seeded - anchoring) / runs * 1000, 2),
                "anchor": round(anchoring / runs * 1000, 2),
            },
        }


def signature_cost(n: int = 2000) -> dict[str, float]:
    """CPU microseconds to sign one head and to check one signature (no I/O)."""
    key = SigningKey.generate()
    start = time.process_time()
    signatures = [sign_head(key, i, "ab" * 32, i - 1) for i in range(1, n + 1)]
    signed = (time.process_time() - start) / n
    start = time.process_time()
    for s in signatures:
        key.verify_key.verify(head_document(s.seq, s.hash, s.key_id, s.from_seq), s.signature)
    checked = (time.process_time() - start) / n
    return {"sign_us": round(signed * 1e6, 1), "verify_us": round(checked * 1e6, 1)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence_bench")
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="300 runs")
    args, _ = parser.parse_known_args(argv)
    runs = 300 if args.quick else args.runs
    machine = {"machine": platform.platform(), "python": platform.python_version()}
    results = [measure(runs, signed=False), measure(runs, signed=True)]
    cost = signature_cost()
    table = (
        "| store | runs | log entries | fill per run | anchor per run | store verify | "
        "evidence verify | export | pack verify | pack size |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for result in results:
        s, per = result["seconds"], result["ms_per_run"]
        kind = "signed + anchored" if result["signed_and_anchored"] else "unsigned"
        table += (
            f"| {kind} | {runs:,} | {result['events']:,} | {per['fill']} ms | "
            f"{per['anchor']} ms | {s['store_verify']} s | {s['evidence_verify']} s | "
            f"{s['export']} s | {s['pack_verify']} s | {result['pack_mb']} MB |\n"
        )
    table += (
        f"\nEd25519 over the RFC 8785 head document, CPU time: sign {cost['sign_us']} µs, "
        f"verify {cost['verify_us']} µs per signature.\n"
    )
    print(table)
    RESULTS.mkdir(exist_ok=True)
    name = "evidence_bench_quick" if args.quick else "evidence_bench"
    document = {"results": results, "signature": cost} | machine
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table)
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
