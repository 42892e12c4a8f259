"""Fleet sweep on Prefect vs a bare Python loop: 200 models x (drift + data quality), 5k rows.

Both sides run the same checks (:mod:`prodcontrol.control.runs.checks` with the real Evidently
checker, the file dataset adapter and a SQLite evidence store) on the same seeded CSV files:

* ``loop``: ``for model in models: run_checks(rt, model)`` in one process;
* ``sweep``: ``prodcontrol.orchestration.flows.run_sweep`` on Prefect's embedded (ephemeral)
  API, task runs in threads, measurements in one worker process per core;
* ``noop``: the same sweep with a checker that returns at once, so its wall time is the
  orchestration cost alone (Prefect task runs, evidence writes, data loading).

Each phase runs in a fresh subprocess, after a one-model warm-up (imports, the Prefect API
server) that is not timed; the sweep's worker processes start inside the timed part. Peak memory
is the largest sum of RSS over the phase's process tree, sampled every 0.2 s.

Run ``python -m bench.sweep_bench [--quick]`` (``--quick``: 20 models).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
ROWS = 5_000
DATASETS = 20
CONTROLS = ["dataset-drift", "dq-missing-share"]
TARGET = 0.8


# --------------------------------------------------------------------------- the fleet


def build_fleet(root: Path, models: int) -> None:
    """Catalog (every tier: drift + missing values), inventory of ``models`` low-tier models and
    ``DATASETS`` seeded reference/current pairs (every fourth one drifted)."""
    shutil.copytree(ROOT / "control_catalog", root / "catalog")
    tiers_file = root / "catalog" / "tiers.yaml"
    tiers = yaml.safe_load(tiers_file.read_text())
    for policy in tiers["tiers"].values():
        policy["controls"] = list(CONTROLS)
        policy.pop("thresholds", None)
    tiers_file.write_text(yaml.safe_dump(tiers, sort_keys=False))
    inventory = root / "inventory"
    (inventory / "data").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for number in range(DATASETS):
        shift = 0.5 if number % 4 == 3 else 0.0
        for side, offset in (("reference", 0.0), ("current", shift)):
            frame = _frame(rng, offset)
            frame.to_csv(inventory / "data" / f"set{number}-{side}.csv", index=False)
    template = yaml.safe_load((ROOT / "examples" / "models.yaml").read_text())["models"][0]
    entries = []
    for number in range(models):
        entry = dict(template)
        data = number % DATASETS
        entry.update(name=f"model-{number:03d}", tier="low", stage="production")
        entry["data"] = {
            "reference": {"type": "file", "path": f"data/set{data}-reference.csv"},
            "current": {"type": "file", "path": f"data/set{data}-current.csv"},
            "prediction_column": "prediction",
            "numerical": [f"num_{i}" for i in range(6)],
            "categorical": ["cat_0", "cat_1", "cat_2"],
        }
        entry.pop("baseline", None)
        entries.append(entry)
    (inventory / "models.yaml").write_text(yaml.safe_dump({"models": entries}, sort_keys=False))
    shutil.copy(ROOT / "examples" / "people.yaml", inventory / "people.yaml")


def _frame(rng: np.random.Generator, shift: float) -> pd.DataFrame:
    columns: dict[str, Any] = {
        f"num_{i}": rng.normal(shift * (i % 2), 1.0, ROWS).round(4) for i in range(6)
    }
    columns["cat_0"] = rng.choice(["a", "b", "c"], ROWS, p=[0.5, 0.3, 0.2])
    columns["cat_1"] = rng.choice(["x", "y"], ROWS)
    columns["cat_2"] = rng.choice([f"l{i}" for i in range(8)], ROWS)
    columns["prediction"] = rng.random(ROWS).round(4)
    return pd.DataFrame(columns)


class NoopChecker:
    """Answers every control at once: what is left of a sweep is orchestration."""

    def measure(self, control: Any, reference: Any, current: Any, **_: Any) -> Any:
        from prodcontrol.ports import Measurement

        return Measurement(control_id=control.id, value=0.0)


def bench_runtime() -> Any:
    """The runtime factory (``bench.sweep_bench:bench_runtime``), in every process alike."""
    from prodcontrol.adapters.datasets import FileSqlMlflowDatasets
    from prodcontrol.adapters.evidently import EvidentlyChecker
    from prodcontrol.adapters.store.sql import SqlEvidenceStore
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import Settings
    from prodcontrol.testing import FakeRegistry

    root = Path(os.environ["SWEEP_BENCH_DIR"])
    state = Path(os.environ["SWEEP_BENCH_STATE"])
    config = load_config(root / "catalog", root / "inventory")
    registry = FakeRegistry()
    for name in config.inventory.models:
        registry.add_version(name, "1", tags={"prodcontrol.approved": "true"})
        registry.set_alias(name, "champion", "1")
    url = f"sqlite:///{state / 'evidence.db'}"
    settings = Settings(
        state_dir=state,
        catalog_dir=root / "catalog",
        inventory_dir=root / "inventory",
        database_url=url,
        mlflow_tracking_uri=f"sqlite:///{state / 'unused-mlflow.db'}",
    )
    noop = os.environ.get("SWEEP_BENCH_NOOP") == "1"
    return Runtime(
        settings,
        config=config,
        store=SqlEvidenceStore(url),
        registry=registry,
        metrics=registry,
        datasets=FileSqlMlflowDatasets(root / "inventory", settings.resolved_tracking_uri),
        checker=NoopChecker() if noop else EvidentlyChecker(),
    )


# --------------------------------------------------------------------------- one phase


def phase(name: str) -> dict[str, Any]:
    """Run one phase in this process (a subprocess of :func:`main`); return its numbers."""
    from prodcontrol.adapters.store.migrate import upgrade
    from prodcontrol.control.runs.checks import run_checks

    state = Path(os.environ["SWEEP_BENCH_STATE"])
    state.mkdir(parents=True, exist_ok=True)
    upgrade(f"sqlite:///{state / 'evidence.db'}")
    rt = bench_runtime()
    models = sorted(rt.config.inventory.models)
    if name == "loop":
        run_checks(rt, models[0], trigger="warm-up")
        started = time.perf_counter()
        results = {m: run_checks(rt, m, trigger="bench-loop") for m in models}
        wall = time.perf_counter() - started
        verdicts = {m: {v.control: v.verdict for v in r.verdicts} for m, r in results.items()}
        return {"wall_s": wall, "verdicts": verdicts, "models": len(models)}
    return _sweep_phase(rt, models)


def _sweep_phase(rt: Any, models: list[str]) -> dict[str, Any]:
    from prefect import flow

    from prodcontrol.orchestration import compute
    from prodcontrol.orchestration.flows import run_sweep
    from prodcontrol.orchestration.runtimes import RuntimeRef

    @flow
    def warm_up() -> None:  # starts the embedded API server outside the timed part
        return None

    warm_up()
    ref = RuntimeRef(factory="bench.sweep_bench:bench_runtime")
    processes = os.cpu_count() or 1
    # like the loop's warm-up: the workers' imports are paid once per process, not per model
    pool_started = time.perf_counter()
    compute.warm_up(ref, processes)
    pool_start_s = time.perf_counter() - pool_started
    started = time.perf_counter()
    report = run_sweep(None, ref, processes=processes, slot="bench")
    wall = time.perf_counter() - started
    failed = [r.model for r in report.results if r.status != "recorded"]
    verdicts = {r.model: r.verdicts for r in report.results}
    return {
        "wall_s": wall,
        "verdicts": verdicts,
        "models": len(models),
        "processes": processes,
        "failed": failed,
        "pool_start_s": pool_start_s,
    }


# --------------------------------------------------------------------------- driver


def _run_phase(name: str, root: Path, env_extra: dict[str, str]) -> dict[str, Any]:
    state = root / f"state-{name}"
    env = os.environ | env_extra | {
        "SWEEP_BENCH_DIR": str(root),
        "SWEEP_BENCH_STATE": str(state),
        "PREFECT_HOME": str(root / f"prefect-{name}"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("PREFECT_API_URL", None)
    out = root / f"{name}.json"
    command = [sys.executable, "-m", "bench.sweep_bench", "--phase", name, "--out", str(out)]
    child = subprocess.Popen(command, env=env, cwd=ROOT)
    peak = _peak_rss(child)
    if child.returncode != 0:
        raise SystemExit(f"phase {name} failed with exit code {child.returncode}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["peak_rss_mb"] = round(peak / 2**20, 1)
    return result


def _peak_rss(child: subprocess.Popen[bytes]) -> int:
    """The largest sum of RSS over the child and its descendants until it exits."""
    peak = 0
    proc = psutil.Process(child.pid)
    while child.poll() is None:
        total = 0
        try:
            for p in [proc, *proc.children(recursive=True)]:
                total += p.memory_info().rss
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.2)
    return peak


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep_bench")
    parser.add_argument("--quick", action="store_true", help="20 models instead of 200")
    parser.add_argument("--phase", choices=["loop", "sweep", "noop"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args, _unknown = parser.parse_known_args(argv)
    if args.phase:
        args.out.write_text(json.dumps(phase(args.phase)))
        return 0
    models = 20 if args.quick else 200
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        root = Path(tmp)
        build_fleet(root, models)
        loop = _run_phase("loop", root, {})
        print(f"loop: {loop['wall_s']:.1f} s, peak {loop['peak_rss_mb']} MB", flush=True)
        sweep = _run_phase("sweep", root, {})
        print(f"sweep: {sweep['wall_s']:.1f} s, peak {sweep['peak_rss_mb']} MB", flush=True)
        noop = _run_phase("noop", root, {"SWEEP_BENCH_NOOP": "1"})
        print(f"noop sweep: {noop['wall_s']:.1f} s", flush=True)
    return _report(models, loop, sweep, noop, quick=args.quick)


def _report(
    models: int, loop: dict[str, Any], sweep: dict[str, Any], noop: dict[str, Any], *, quick: bool
) -> int:
    pairs = models * len(CONTROLS)
    ratio = sweep["wall_s"] / loop["wall_s"]
    same = sum(loop["verdicts"][m] == sweep["verdicts"].get(m) for m in loop["verdicts"])
    summary = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "models": models,
        "model_controls": pairs,
        "rows": ROWS,
        "loop_s": round(loop["wall_s"], 2),
        "sweep_s": round(sweep["wall_s"], 2),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "met": ratio <= TARGET,
        "processes": sweep["processes"],
        "worker_pool_start_s_untimed": round(sweep["pool_start_s"], 2),
        "loop_peak_rss_mb": loop["peak_rss_mb"],
        "sweep_peak_rss_mb": sweep["peak_rss_mb"],
        "noop_sweep_s": round(noop["wall_s"], 2),
        "overhead_ms_per_model_control": round(1000 * noop["wall_s"] / pairs, 1),
        "loop_ms_per_model_control": round(1000 * loop["wall_s"] / pairs, 1),
        "same_verdicts": f"{same}/{models}",
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "sweep_failed_models": sweep["failed"],
    }
    RESULTS.mkdir(exist_ok=True)
    name = "sweep_bench_quick" if quick else "sweep_bench"
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = [
        "| measure | value |",
        "|---|---:|",
        *(f"| {key} | {value} |" for key, value in summary.items()),
    ]
    (RESULTS / f"{name}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0 if summary["met"] and not summary["sweep_failed_models"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
