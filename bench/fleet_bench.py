"""A fleet of high-tier models through Prefect, evidence on PostgreSQL, and a kill -9 half-way.

Every model is on the high tier with the shipped catalog's 12 controls, on 50,000-row reference
and current Parquet files (the drift bench's 15 features, a prediction, the target; ``DATASETS``
seeded pairs shared round-robin, every fourth one drifted). MLflow is the in-memory fake
registry (each process builds the same one): this bench measures the sweep, the data and the
evidence store, not an MLflow server.

* ``sweep N``: ``prodcontrol.orchestration.flows.run_sweep`` (Prefect embedded API, task runs in
  threads, measurements in one worker process per core) over N models, in a fresh process after
  a one-model warm-up of the Prefect API; wall time, model-controls per second, peak RSS of the
  process tree, and what PostgreSQL holds afterwards.
* ``kill``: the same sweep, killed with SIGKILL (the flow process and its workers) once half the
  models are recorded, then started again on the same schedule slot. Afterwards every model must
  have exactly one control run with exactly 12 verdicts: nothing lost, nothing twice.

Run ``python -m bench.fleet_bench [--sizes 25 50 100] [--kill 50] [--rows 50000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import psutil
import yaml

from bench.drift_bench import CATEGORICAL, NUMERIC, make_frame

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
PG = "host=127.0.0.1 port=5432 dbname=test user=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DATASETS = 10
CONTROLS = 12
SLOT = "bench-slot"


# --------------------------------------------------------------------------- the fleet


def build(root: Path, models: int, rows: int) -> None:
    """The shipped catalog, ``models`` high-tier models, ``DATASETS`` Parquet pairs."""
    shutil.copytree(ROOT / "control_catalog", root / "catalog")
    inventory = root / "inventory"
    (inventory / "data").mkdir(parents=True)
    for number in range(DATASETS):
        scenario = "strong_shift_5_columns" if number % 4 == 3 else None
        pairs = (("reference", 10 + number, None), ("current", 50 + number, scenario))
        for side, seed, chosen in pairs:
            frame = make_frame(rows, seed, chosen)
            rng = np.random.default_rng(seed)
            frame["prediction"] = rng.random(rows).round(4)
            frame["is_fraud"] = (rng.random(rows) < 0.05).astype(np.int64)
            frame.to_parquet(inventory / "data" / f"set{number}-{side}.parquet", index=False)
    examples = yaml.safe_load((ROOT / "examples" / "models.yaml").read_text())["models"]
    template = next(m for m in examples if m["name"] == "fraud-detector")
    entries = []
    for number in range(models):
        entry = json.loads(json.dumps(template, default=str))
        data = number % DATASETS
        entry["name"] = f"model-{number:04d}"
        entry["data"] = {
            "reference": {"type": "file", "path": f"data/set{data}-reference.parquet"},
            "current": {"type": "file", "path": f"data/set{data}-current.parquet"},
            "prediction_column": "prediction",
            "target_column": "is_fraud",
            "numerical": list(NUMERIC),
            "categorical": list(CATEGORICAL),
        }
        entries.append(entry)
    (inventory / "models.yaml").write_text(yaml.safe_dump({"models": entries}, sort_keys=False))
    shutil.copy(ROOT / "examples" / "people.yaml", inventory / "people.yaml")


def fleet_runtime() -> Any:
    """The runtime factory (``bench.fleet_bench:fleet_runtime``), the same in every process."""
    from prodcontrol.adapters.datasets import FileSqlMlflowDatasets
    from prodcontrol.adapters.evidently import EvidentlyChecker
    from prodcontrol.adapters.store.sql import SqlEvidenceStore
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.ports import MetricPoint
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import Settings
    from prodcontrol.testing import FakeRegistry

    root = Path(os.environ["FLEET_BENCH_DIR"])
    state = Path(os.environ["FLEET_BENCH_STATE"])
    url = os.environ["FLEET_BENCH_DB"]
    config = load_config(root / "catalog", root / "inventory")
    registry = FakeRegistry()
    now = datetime.now(UTC)
    for name, entry in config.inventory.models.items():
        approved = {"prodcontrol.approved": "true"}
        registry.add_version(name, "1", metrics={"average_precision": 0.80}, tags=approved)
        ref = registry.add_version(name, "2", metrics={"average_precision": 0.79}, tags=approved)
        registry.set_alias(name, "champion", "2")
        if entry.use_case and entry.use_case.expected_value:
            key = entry.use_case.expected_value.metric_key
            registry.history[(str(ref.run_id), key)] = [
                MetricPoint(key=key, value=0.65, step=day, at=now - timedelta(days=day))
                for day in range(7)
            ]
    settings = Settings(
        state_dir=state,
        catalog_dir=root / "catalog",
        inventory_dir=root / "inventory",
        database_url=url,
        mlflow_tracking_uri=f"sqlite:///{state / 'unused-mlflow.db'}",
    )
    return Runtime(
        settings,
        config=config,
        store=SqlEvidenceStore(url),
        registry=registry,
        metrics=registry,
        datasets=FileSqlMlflowDatasets(root / "inventory", settings.resolved_tracking_uri),
        checker=EvidentlyChecker(),
    )


# --------------------------------------------------------------------------- PostgreSQL


def fresh_schema(name: str) -> str:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{name}"')
    return f"{PG_URL}?options={quote(f'-csearch_path={name}', safe='')}"


def drop_schema(name: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def census(schema: str) -> dict[str, Any]:
    """What the evidence store holds: runs per model, verdicts per run, runs by status."""
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        runs = conn.execute("SELECT model, count(*) FROM pc_runs GROUP BY model").fetchall()
        statuses = conn.execute("SELECT status, count(*) FROM pc_runs GROUP BY status").fetchall()
        verdicts = conn.execute(
            "SELECT r.model, count(v.id) FROM pc_runs r LEFT JOIN pc_verdicts v ON v.run_id = r.id "
            "GROUP BY r.id, r.model"
        ).fetchall()
        entries = conn.execute("SELECT count(*) FROM pc_events").fetchone()
    return {
        "models_with_runs": len(runs),
        "max_runs_per_model": max((n for _, n in runs), default=0),
        "runs_by_status": dict(statuses),
        "verdicts_per_run": sorted({n for _, n in verdicts}),
        "events": entries[0] if entries else 0,
    }


def finished_runs(schema: str) -> int:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute("SELECT count(*) FROM pc_runs WHERE status <> 'running'").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- one sweep process


def sweep_phase(out: Path) -> None:
    """In a fresh process: warm up the Prefect API and the workers, then one timed sweep."""
    from prefect import flow

    from prodcontrol.adapters.store.migrate import upgrade
    from prodcontrol.orchestration import compute
    from prodcontrol.orchestration.flows import run_sweep
    from prodcontrol.orchestration.runtimes import RuntimeRef

    upgrade(os.environ["FLEET_BENCH_DB"])

    @flow
    def warm_up() -> None:
        return None

    warm_up()
    ref = RuntimeRef(factory="bench.fleet_bench:fleet_runtime")
    processes = os.cpu_count() or 1
    compute.warm_up(ref, processes)
    started, cpu = time.perf_counter(), time.process_time()
    report = run_sweep("high", ref, processes=processes, slot=SLOT)
    wall = time.perf_counter() - started
    out.write_text(
        json.dumps(
            {
                "wall_s": wall,
                "flow_process_cpu_s": time.process_time() - cpu,
                "processes": processes,
                "models": len(report.results),
                "statuses": sorted({r.status for r in report.results}),
                "failed": [r.model for r in report.results if r.status == "failed"],
            }
        )
    )


def _env(root: Path, schema_url: str, name: str) -> dict[str, str]:
    env = os.environ | {
        "FLEET_BENCH_DIR": str(root),
        "FLEET_BENCH_STATE": str(root / "state"),
        "FLEET_BENCH_DB": schema_url,
        "PREFECT_HOME": str(root / f"prefect-{name}"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("PREFECT_API_URL", None)
    return env


def _start(root: Path, schema_url: str, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    (root / "state").mkdir(exist_ok=True)
    out = root / f"{name}.json"
    command = [sys.executable, "-m", "bench.fleet_bench", "--phase", str(out)]
    child = subprocess.Popen(
        command, env=_env(root, schema_url, name), cwd=ROOT, start_new_session=True
    )
    return child, out


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            total += p.memory_info().rss
    except psutil.Error:
        pass
    return total


def _tree_cpu(proc: psutil.Process, seen: dict[int, float]) -> None:
    try:
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            seen[p.pid] = times.user + times.system
    except psutil.Error:
        pass


def run_size(models: int, rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, models, rows)
        schema = f"fleet_bench_{models}_{os.getpid()}"
        url = fresh_schema(schema)
        try:
            child, out = _start(root, url, f"sweep-{models}")
            proc, peak, cpu = psutil.Process(child.pid), 0, {}
            started = time.perf_counter()
            while child.poll() is None:
                peak = max(peak, _tree_rss(proc))
                _tree_cpu(proc, cpu)
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            if child.returncode != 0:
                raise SystemExit(f"sweep of {models} models failed ({child.returncode})")
            result: dict[str, Any] = json.loads(out.read_text())
            result.update(
                models=models,
                rows=rows,
                process_wall_s=elapsed,
                tree_cpu_s=sum(cpu.values()),
                peak_rss_mb=peak / 2**20,
                model_controls_per_s=models * CONTROLS / result["wall_s"],
                census=census(schema),
                load_average=os.getloadavg(),
            )
        finally:
            drop_schema(schema)
    print(
        f"  sweep {models:5d} models: {result['wall_s']:8.1f} s, "
        f"{result['model_controls_per_s']:.2f} model-controls/s, "
        f"{result['peak_rss_mb']:.0f} MB peak, {result['census']}",
        flush=True,
    )
    return result


def run_kill(models: int, rows: int) -> dict[str, Any]:
    """SIGKILL the sweep's whole process group once half the models are recorded; sweep again."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, models, rows)
        schema = f"fleet_bench_kill_{os.getpid()}"
        url = fresh_schema(schema)
        try:
            child, _ = _start(root, url, "killed")
            recorded = 0
            while child.poll() is None:
                with_tables = _has_tables(schema)
                recorded = finished_runs(schema) if with_tables else 0
                if recorded >= models // 2:
                    os.killpg(child.pid, signal.SIGKILL)
                    break
                time.sleep(0.5)
            child.wait()
            before = census(schema)
            again, out = _start(root, url, "again")
            again.wait()
            if again.returncode != 0:
                raise SystemExit(f"second sweep failed ({again.returncode})")
            after = census(schema)
            second = json.loads(out.read_text())
        finally:
            drop_schema(schema)
    ok = (
        after["models_with_runs"] == models
        and after["max_runs_per_model"] == 1
        and after["verdicts_per_run"] == [CONTROLS]
    )
    print(f"  kill -9 at {recorded}/{models}: before {before}, after {after}, ok={ok}", flush=True)
    return {
        "models": models,
        "killed_after_recorded": recorded,
        "before": before,
        "after": after,
        "second_sweep": second,
        "nothing_lost_nothing_twice": ok,
    }


def _has_tables(schema: str) -> bool:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'pc_runs'",
            (schema,),
        ).fetchone()
    return bool(row and row[0])


# --------------------------------------------------------------------------- report


def _plot(sizes: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    models = [s["models"] for s in sizes]
    left.plot(models, [s["wall_s"] / 60 for s in sizes], marker="o", label="measured")
    if len(sizes) >= 2:
        slope = (sizes[-1]["wall_s"] - sizes[0]["wall_s"]) / (models[-1] - models[0])
        base = sizes[-1]["wall_s"] - slope * models[-1]
        left.plot(
            [models[-1], 1000],
            [(base + slope * m) / 60 for m in (models[-1], 1000)],
            linestyle="--",
            label="linear extrapolation",
        )
    left.axhline(15, color="grey", linestyle=":", label="goal: 15 min for 1,000")
    left.set(xlabel="high-tier models (12 controls, 50k rows)", ylabel="sweep wall time, minutes")
    left.legend()
    left.grid(alpha=0.3)
    right.plot(models, [s["model_controls_per_s"] for s in sizes], marker="o")
    right.axhline(1000 * CONTROLS / 900, color="grey", linestyle=":", label="goal rate")
    right.set(xlabel="models", ylabel="model-controls per second")
    right.legend()
    right.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(sizes: list[dict[str, Any]], kill: dict[str, Any] | None) -> str:
    lines = [
        "| models | model-controls | sweep wall s | model-controls/s | CPU s (tree) "
        "| peak RSS MB | runs | verdicts per run | load avg |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in sizes:
        c = s["census"]
        lines.append(
            f"| {s['models']:,} | {s['models'] * CONTROLS:,} | {s['wall_s']:.1f} | "
            f"{s['model_controls_per_s']:.2f} | {s['tree_cpu_s']:.0f} | {s['peak_rss_mb']:.0f} | "
            f"{sum(c['runs_by_status'].values())} | {c['verdicts_per_run']} | "
            f"{s['load_average'][0]:.1f} |"
        )
    if kill:
        lines += [
            "",
            f"kill -9 after {kill['killed_after_recorded']} of {kill['models']} models recorded; "
            f"before the restart: {kill['before']}; after: {kill['after']}; "
            f"nothing lost, nothing twice: **{kill['nothing_lost_nothing_twice']}**.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench")
    parser.add_argument("--sizes", type=int, nargs="*", default=[25, 50, 100])
    parser.add_argument("--kill", type=int, default=50, help="fleet size of the kill test; 0: none")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="4 and 8 models, 5,000 rows")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        sweep_phase(Path(args.phase))
        return 0
    if args.quick:
        args.sizes, args.kill, args.rows = [4, 8], 8, 5_000
    print(f"fleet sweep, high tier, {args.rows:,} rows, sizes {args.sizes}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else ""
    sizes = []
    for models in args.sizes:  # each size is kept as soon as it is measured
        sizes.append(run_size(models, args.rows))
        (RESULTS / f"fleet_bench{suffix}.partial.json").write_text(json.dumps(sizes, indent=2))
    kill = run_kill(args.kill, args.rows) if args.kill else None
    _plot(sizes, RESULTS / f"fleet_scaling{suffix}.png")
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
        "sizes": sizes,
        "kill": kill,
    }
    (RESULTS / f"fleet_bench{suffix}.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(sizes, kill)
    (RESULTS / f"fleet_bench{suffix}.md").write_text(table)
    print(table)
    return 0 if kill is None or kill["nothing_lost_nothing_twice"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
