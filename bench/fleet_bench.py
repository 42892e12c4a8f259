"""A fleet of high-tier models through a real Prefect server and workers, evidence on PostgreSQL.

Every model is on the high tier with the shipped catalog's controls (13 now: 12 when issue 19
was written, then ``serving-version-approved``), on 50,000-row reference and current Parquet
files (the drift bench's 15 features, a prediction, the target; ``DATASETS`` seeded pairs shared
round-robin, every fourth one drifted). MLflow is the in-memory fake registry (each process
builds the same one): this bench measures the sweep, the data, the one report per run and the
evidence store, not an MLflow server.

Everything runs as a team runs it: ``prefect server start`` (SQLite, loopback), ``prefect worker
start --type process --limit 1`` per worker, the sweep flow deployed to the work pool
(``shards`` = the number of workers), one flow run created through the API; the wall time is from
that creation to the flow run's final state (worker pick-up, flow process start, imports and
measurement workers included). Evidence in a fresh PostgreSQL schema per sweep.

* ``--runs 100x1 100x2 1000x1``: MODELSxWORKERS sweeps; wall time, model-controls per second,
  the ratio to the 15-minute goal, CPU seconds of the workers' process trees (flow processes
  and measurement processes) and of the Prefect server, peak RSS, load average, runs recorded
  over time, and what PostgreSQL holds afterwards; which worker ran which flow run.
* ``--kill N``: N models over two workers; the worker running the second shard is SIGKILLed
  with everything it started once half the fleet is recorded; the first flow run gives that
  shard up once it records nothing for a minute and ends; a replacement worker starts and the
  same slot runs again. Afterwards every model must have exactly one finished control run with
  every verdict: nothing lost, nothing twice (counted in PostgreSQL).

Run ``python -m bench.fleet_bench [--runs 100x1 100x2 1000x1] [--kill 60] [--quick]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
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
TIERS = yaml.safe_load((ROOT / "control_catalog" / "tiers.yaml").read_text())["tiers"]
CONTROLS = len(TIERS["high"]["controls"])
"""The high tier's controls in the shipped catalog (12 when the issue was written, 13 now)."""
SLOT = "bench-slot"
GOAL_S = 15 * 60


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


def _has_tables(schema: str) -> bool:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
            "AND table_name = 'pc_runs'",
            (schema,),
        ).fetchone()
    return bool(row and row[0])


def finished_runs(schema: str) -> int:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        row = conn.execute("SELECT count(*) FROM pc_runs WHERE status <> 'running'").fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- Prefect


POOL = "fleet-bench"
FACTORY = "bench.fleet_bench:fleet_runtime"


class Cluster:
    """A real ``prefect server`` and ``prefect worker`` processes on a work pool, as a team runs
    them; each worker runs one flow run at a time (``--limit 1``)."""

    def __init__(self, root: Path) -> None:
        from prodcontrol.testing.prefect_server import PrefectServer

        self.root = root
        self.server = PrefectServer(root / "prefect")
        self.workers: list[Any] = []

    def start(self) -> None:
        self.server.start(timeout=600)
        os.environ.update(
            {
                "PREFECT_API_URL": self.server.api_url,
                "PREFECT_HOME": str(self.root / "client-home"),
                "PREFECT_LOGGING_LEVEL": "WARNING",
            }
        )

    def add_worker(self, pool: str, fleet: Path, schema_url: str, name: str) -> Any:
        cwd = fleet / name
        cwd.mkdir(exist_ok=True)
        env = {
            "FLEET_BENCH_DIR": str(fleet),
            "FLEET_BENCH_STATE": str(fleet / "state"),
            "FLEET_BENCH_DB": schema_url,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        }  # the worker logs at INFO: "submitting flow run <id>" says which worker ran what
        worker = self.server.worker(pool, cwd, cwd / "home", env, limit=1, name=name)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        """Stop each worker; then whatever it started that is still there (a process worker
        leaves its flow-run processes, in their own process groups, behind)."""
        for worker in self.workers:
            try:
                left = psutil.Process(worker.popen.pid).children(recursive=True)
            except psutil.Error:
                left = []
            worker.stop()
            for process in left:
                with contextlib.suppress(psutil.Error):
                    process.kill()
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        self.server.stop()


def deploy(pool: str, name: str, shards: int, stall_s: float) -> str:
    from prefect.types.entrypoint import EntrypointType

    from prodcontrol.orchestration.deploy import ensure_work_pool
    from prodcontrol.orchestration.flows import sweep_flow

    ensure_work_pool(pool)
    deployment = sweep_flow.to_deployment(
        name=name,
        entrypoint_type=EntrypointType.MODULE_PATH,
        parameters={
            "tier": "high",
            "runtime": {"factory": FACTORY},
            "slot": SLOT,
            "shards": shards,
            "shard_stall_s": stall_s,
        },
    )
    return str(deployment.apply(work_pool_name=pool))


def trigger(deployment_id: str) -> str:
    from prefect.deployments import run_deployment

    return str(run_deployment(deployment_id, timeout=0, as_subflow=False).id)


def flow_runs(deployment_id: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
    return [
        {
            "id": str(r.id),
            "name": r.name,
            "state": r.state.name if r.state else None,
            "type": r.state.type.value if r.state else None,
            "message": (r.state.message or "")[:300] if r.state else "",
            "parameters": {k: r.parameters.get(k) for k in ("shard", "shards")},
            "start": r.start_time.isoformat() if r.start_time else None,
            "end": r.end_time.isoformat() if r.end_time else None,
        }
        for r in runs
    ]


def _state(flow_run_id: str) -> tuple[str, str]:
    """The flow run's state type and name (``FAILED``, ``Blocked``)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state  # type: ignore[arg-type]
    return (str(state.type.value), state.name) if state else ("PENDING", "Pending")


def _state_type(flow_run_id: str) -> str:
    return _state(flow_run_id)[0]


def ran_on(cluster: Cluster, runs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which worker picked up which flow run (from the workers' own logs)."""
    found: dict[str, list[str]] = {}
    for number, worker in enumerate(cluster.workers):
        text = worker.text()
        found[f"worker-{number + 1}"] = [
            r["name"]
            for r in runs
            if f"submitting flow run '{r['id']}'" in text
            and f"Aborted submission of flow run '{r['id']}'" not in text
        ]
    return found


# --------------------------------------------------------------------------- measuring


class Meter:
    """CPU seconds and peak RSS of process trees, sampled; the load average; runs recorded."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.cpu: dict[int, float] = {}
        self.peak = 0
        self.loads: list[float] = []
        self.progress: list[tuple[float, int]] = []
        self.started = time.perf_counter()

    def add_root(self, pid: int) -> None:
        self.roots.append(pid)

    def sample(self, schema: str) -> int:
        rss = 0
        for root in self.roots:
            try:
                proc = psutil.Process(root)
                tree = [proc, *proc.children(recursive=True)]
            except psutil.Error:
                continue
            for p in tree:
                try:
                    times = p.cpu_times()
                    self.cpu[p.pid] = times.user + times.system
                    rss += p.memory_info().rss
                except psutil.Error:
                    continue
        self.peak = max(self.peak, rss)
        self.loads.append(os.getloadavg()[0])
        done = finished_runs(schema) if _has_tables(schema) else 0
        self.progress.append((time.perf_counter() - self.started, done))
        return done

    def summary(self) -> dict[str, Any]:
        return {
            "cpu_s": sum(self.cpu.values()),
            "peak_rss_mb": self.peak / 2**20,
            "load_average": {
                "min": min(self.loads, default=0),
                "mean": sum(self.loads) / max(len(self.loads), 1),
                "max": max(self.loads, default=0),
            },
            "progress": self.progress,
        }


def _wait_final(flow_run_id: str, meter: Meter, schema: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meter.sample(schema)
        kind, name = _state(flow_run_id)
        if kind in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            meter.sample(schema)
            return name
        time.sleep(2)
    raise SystemExit(f"flow run {flow_run_id} not final after {timeout_s:.0f} s")


def run_size(cluster: Cluster, models: int, workers: int, rows: int) -> dict[str, Any]:
    """One sweep of ``models`` over ``workers`` workers, end to end through the server."""
    name = f"fleet-{models}x{workers}"
    fleet = cluster.root / name
    fleet.mkdir()
    build(fleet, models, rows)
    (fleet / "state").mkdir()
    schema = f"fleet_bench_{models}x{workers}_{os.getpid()}"
    url = fresh_schema(schema)
    try:
        from prodcontrol.adapters.store.migrate import upgrade

        upgrade(url)
        pool = f"{POOL}-{models}x{workers}"
        deployment_id = deploy(pool, name, shards=workers, stall_s=shards_stall(models))
        server_cpu = _cpu_of(cluster.server.process.popen.pid)  # type: ignore[union-attr]
        for number in range(workers):
            cluster.add_worker(pool, fleet, url, f"worker-{number + 1}")
        meter = Meter([w.popen.pid for w in cluster.workers])
        started = time.perf_counter()
        parent = trigger(deployment_id)
        final = _wait_final(parent, meter, schema, timeout_s=4 * 3600)
        wall = time.perf_counter() - started
        server_cpu = _cpu_of(cluster.server.process.popen.pid) - server_cpu  # type: ignore[union-attr]
        runs = flow_runs(deployment_id)
        result: dict[str, Any] = {
            "models": models,
            "workers": workers,
            "rows": rows,
            "wall_s": wall,
            "final_state": final,
            "flow_runs": runs,
            "ran_on": ran_on(cluster, runs),
            "model_controls_per_s": models * CONTROLS / wall,
            "goal_ratio": wall / GOAL_S,
            "census": census(schema),
            "server_cpu_s": server_cpu,
            **meter.summary(),
        }
        result["cpu_s_per_model"] = result["cpu_s"] / models
    finally:
        cluster.stop_workers()
        drop_schema(schema)
    print(
        f"  {models:5d} models, {workers} worker(s): {wall:8.1f} s, "
        f"{result['model_controls_per_s']:.2f} model-controls/s, {result['cpu_s']:.0f} CPU s, "
        f"load {result['load_average']['mean']:.1f}, {final}, {result['census']}",
        flush=True,
    )
    return result


def shards_stall(models: int) -> float:
    del models
    return 120.0


def _cpu_of(pid: int) -> float:
    total = 0.0
    try:
        proc = psutil.Process(pid)
        for p in [proc, *proc.children(recursive=True)]:
            times = p.cpu_times()
            total += times.user + times.system
    except psutil.Error:
        pass
    return total


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a worker and everything it started (its flow run and measurement processes)."""
    proc = psutil.Process(pid)
    tree = [proc, *proc.children(recursive=True)]
    for p in tree:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    return [p.pid for p in tree]


def run_kill(cluster: Cluster, models: int, rows: int) -> dict[str, Any]:
    """Two workers; SIGKILL the one running the second shard once half the fleet is recorded,
    let the sweep end, start a worker again and run the same slot again; count rows."""
    name = f"fleet-kill-{models}"
    fleet = cluster.root / name
    fleet.mkdir()
    build(fleet, models, rows)
    (fleet / "state").mkdir()
    schema = f"fleet_bench_kill_{os.getpid()}"
    url = fresh_schema(schema)
    try:
        from prodcontrol.adapters.store.migrate import upgrade

        upgrade(url)
        pool = f"{POOL}-kill"
        deployment_id = deploy(pool, name, shards=2, stall_s=60.0)
        for number in range(2):
            cluster.add_worker(pool, fleet, url, f"worker-{number + 1}")
        meter = Meter([w.popen.pid for w in cluster.workers])
        parent = trigger(deployment_id)
        killed: dict[str, Any] = {}
        while not killed:
            done = meter.sample(schema)
            if done >= models // 2:
                runs = flow_runs(deployment_id)
                child = [r for r in runs if r["id"] != parent and r["type"] == "RUNNING"]
                holder = [
                    n for n, w in enumerate(cluster.workers) if child and child[0]["id"] in w.text()
                ]
                if child and holder:
                    pids = _kill_tree(cluster.workers[holder[0]].popen.pid)
                    killed = {
                        "worker": f"worker-{holder[0] + 1}",
                        "flow_run": child[0]["name"],
                        "recorded_when_killed": done,
                        "pids": pids,
                    }
            if _state_type(parent) in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                raise SystemExit("the sweep ended before a worker could be killed")
            time.sleep(0.5)
        first = _wait_final(parent, meter, schema, timeout_s=3600)
        before = census(schema)
        cluster.workers[int(killed["worker"].split("-")[1]) - 1].popen.wait()
        cluster.add_worker(pool, fleet, url, "worker-3")  # the replacement
        again = trigger(deployment_id)
        second = _wait_final(again, meter, schema, timeout_s=3600)
        after = census(schema)
        runs = flow_runs(deployment_id)
        placed = ran_on(cluster, runs)
    finally:
        cluster.stop_workers()
        drop_schema(schema)
    ok = (
        after["models_with_runs"] == models
        and after["max_runs_per_model"] == 1
        and after["verdicts_per_run"] == [CONTROLS]
        and "running" not in after["runs_by_status"]
    )
    print(
        f"  kill -9 {killed}: first {first}, before {before}; again {second}, after {after}, "
        f"ok={ok}",
        flush=True,
    )
    return {
        "models": models,
        "killed": killed,
        "first_sweep": first,
        "before": before,
        "second_sweep": second,
        "after": after,
        "flow_runs": runs,
        "ran_on": placed,
        "nothing_lost_nothing_twice": ok,
    }


# --------------------------------------------------------------------------- profile


def run_profile(models: int, rows: int) -> dict[str, Any]:
    """Where one model's run goes: ``record_model`` of ``models`` models in this process under
    cProfile (after one model to import everything), evidence on PostgreSQL."""
    import cProfile
    import io
    import pstats

    from prodcontrol.adapters.store.migrate import upgrade
    from prodcontrol.orchestration.model_run import record_model

    with tempfile.TemporaryDirectory(prefix="fleet-profile-") as tmp:
        root = Path(tmp)
        build(root, models + 1, rows)
        (root / "state").mkdir()
        schema = f"fleet_bench_profile_{os.getpid()}"
        url = fresh_schema(schema)
        os.environ |= {
            "FLEET_BENCH_DIR": str(root),
            "FLEET_BENCH_STATE": str(root / "state"),
            "FLEET_BENCH_DB": url,
        }
        try:
            upgrade(url)
            rt = fleet_runtime()

            def one(number: int) -> None:
                name = f"model-{number:04d}"
                record_model(rt, name, key=f"profile:{name}", flow_run_id=None, retry_delays=[])

            one(0)
            profile = cProfile.Profile()
            cpu = time.process_time()
            profile.enable()
            for number in range(1, models + 1):
                one(number)
            profile.disable()
            cpu = time.process_time() - cpu
        finally:
            drop_schema(schema)
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(28)
    by_part = {
        name: _cumulative(profile, fragment) / models
        for name, fragment in (
            ("whole run (record_model)", "model_run.py:.*record_model"),
            ("the run's one Evidently report (render_report)", "evidently.py:.*render_report"),
            ("  of which Evidently Report.run", "evidently/core/report.py:.*\\(run\\)"),
            ("  of which writing JSON + snapshot.gz", "evidently_report.py:.*write_report"),
            ("measuring the controls (measure_control)", "checks.py:.*measure_control"),
            ("open_run", "checks.py:.*open_run"),
            ("recording: store transaction (close_run in the store)", "runs.py:.*close_run"),
        )
    }
    return {
        "models": models,
        "rows": rows,
        "cpu_s_per_model": cpu / models,
        "parts_s": by_part,
        "stats": text.getvalue(),
    }


def _cumulative(profile: Any, pattern: str) -> float:
    import pstats
    import re

    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    regex = re.compile(pattern)
    total = 0.0
    for (file, line, name), (_cc, _nc, _tt, ct, _callers) in stats.items():
        if regex.search(f"{file}:{line}({name})"):
            total = max(total, ct)
    return total


# --------------------------------------------------------------------------- report


def _plot(sizes: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.2))
    for workers in sorted({s["workers"] for s in sizes}):
        rows = sorted((s for s in sizes if s["workers"] == workers), key=lambda s: s["models"])
        label = f"{workers} worker{'s' if workers > 1 else ''}"
        models = [s["models"] for s in rows]
        left.plot(models, [s["wall_s"] / 60 for s in rows], marker="o", label=label)
        middle.plot(models, [s["model_controls_per_s"] for s in rows], marker="o", label=label)
        for s in rows:
            t, done = zip(*s["progress"], strict=True) if s["progress"] else ((), ())
            right.plot([x / 60 for x in t], done, label=f"{s['models']} models, {label}")
    controls = _controls(sizes[0]) if sizes else CONTROLS
    left.axhline(GOAL_S / 60, color="grey", linestyle=":", label="goal: 1,000 in 15 min")
    left.set(
        xlabel=f"high-tier models ({controls} controls, 50k rows)",
        ylabel="end-to-end wall, minutes",
    )
    middle.axhline(1000 * controls / GOAL_S, color="grey", linestyle=":", label="goal rate")
    middle.set(xlabel="models", ylabel="model-controls per second")
    right.set(xlabel="minutes since the flow run was created", ylabel="control runs recorded")
    for axis in (left, middle, right):
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    figure.suptitle(
        "Fleet sweep through a Prefect server and process workers, evidence on PostgreSQL "
        "(2 shared cores)",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _controls(size: dict[str, Any]) -> int:
    """The controls per model a measured sweep ran (the tier may have more by now)."""
    return round(size["model_controls_per_s"] * size["wall_s"] / size["models"])


def markdown(sizes: list[dict[str, Any]], kill: dict[str, Any] | None) -> str:
    lines = [
        "| models | workers | model-controls | wall s | model-controls/s | wall / 15 min "
        "| CPU s (workers' trees) | CPU s per model | server CPU s | peak RSS MB "
        "| runs (status) | verdicts per run | load avg mean (max) | final state |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|",
    ]
    for s in sorted(sizes, key=lambda s: (s["models"], s["workers"])):
        c = s["census"]
        load = s["load_average"]
        lines.append(
            f"| {s['models']:,} | {s['workers']} | {_controls(s) * s['models']:,} | "
            f"{s['wall_s']:.0f} | {s['model_controls_per_s']:.2f} | {s['goal_ratio']:.2f}x | "
            f"{s['cpu_s']:.0f} | {s['cpu_s_per_model']:.2f} | {s['server_cpu_s']:.0f} | "
            f"{s['peak_rss_mb']:.0f} | {sum(c['runs_by_status'].values())} "
            f"{c['runs_by_status']} | {c['verdicts_per_run']} | "
            f"{load['mean']:.1f} ({load['max']:.1f}) | {s['final_state']} |"
        )
    for s in sizes:
        if s["workers"] > 1:
            lines.append(f"\n{s['models']} models on {s['workers']} workers: {s['ran_on']}")
    if kill:
        lines += [
            "",
            f"kill -9 of {kill['killed']['worker']} (running {kill['killed']['flow_run']}) once "
            f"{kill['killed']['recorded_when_killed']} of {kill['models']} models were recorded; "
            f"first sweep ended {kill['first_sweep']}; before the re-run: {kill['before']}; "
            f"the same slot run again ({kill['second_sweep']}): {kill['after']}; "
            f"nothing lost, nothing twice: **{kill['nothing_lost_nothing_twice']}**.",
        ]
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    names = ("prefect", "evidently", "pandas", "numpy", "scipy", "pyarrow", "sqlalchemy", "psycopg")
    return {n: version(n) for n in names}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench")
    parser.add_argument(
        "--runs",
        nargs="*",
        default=["1000x2", "100x2", "100x1"],
        help="MODELSxWORKERS sweeps (default 1000x2 100x2 100x1)",
    )
    parser.add_argument("--kill", type=int, default=60, help="fleet size of the kill test; 0: none")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--profile", type=int, default=0, help="only profile N models' runs")
    parser.add_argument("--tag", default="", help="results/fleet_bench_TAG.* instead")
    parser.add_argument(
        "--replot", nargs="*", help="only: one table and plot from these results JSON files"
    )
    parser.add_argument("--quick", action="store_true", help="6x1 and 6x2, kill at 8, 5,000 rows")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server and workers too
    if args.quick:
        args.runs, args.kill, args.rows = ["6x1", "6x2"], 8, 5_000
    if args.replot:
        documents = [json.loads(Path(f).read_text()) for f in args.replot]
        sizes = [s for d in documents for s in (d if isinstance(d, list) else d["sizes"])]
        kill = next((d["kill"] for d in documents if isinstance(d, dict) and d["kill"]), None)
        _plot(sizes, RESULTS / "fleet_scaling.png")
        table = markdown(sizes, kill)
        (RESULTS / "fleet_bench.md").write_text(table)
        print(table)
        return 0
    if args.profile:
        found = run_profile(args.profile, args.rows)
        RESULTS.mkdir(exist_ok=True)
        lines = [
            f"cProfile of {found['models']} high-tier model runs at {found['rows']:,} rows "
            f"(one process, evidence on PostgreSQL): {found['cpu_s_per_model']:.2f} CPU s "
            "per model",
            "",
            "| part | wall s per model (cumulative) |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {v:.3f} |" for k, v in found["parts_s"].items()]
        lines += ["", "```", found["stats"].strip(), "```"]
        (RESULTS / "fleet_profile.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines[:12]))
        return 0
    plan = [tuple(int(n) for n in r.split("x")) for r in args.runs]
    print(f"fleet sweep, high tier, {args.rows:,} rows, runs {args.runs}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else (f"_{args.tag}" if args.tag else "")
    sizes: list[dict[str, Any]] = []
    kill = None
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        cluster = Cluster(Path(tmp))
        cluster.start()
        try:
            for models, workers in plan:  # each run is kept as soon as it is measured
                sizes.append(run_size(cluster, models, workers, args.rows))
                partial = RESULTS / f"fleet_bench{suffix}.partial.json"
                partial.write_text(json.dumps(sizes, indent=2))
            kill = run_kill(cluster, args.kill, args.rows) if args.kill else None
        finally:
            cluster.stop()
        tracebacks = cluster.server.tracebacks()
    _plot(sizes, RESULTS / f"fleet_scaling{suffix}.png")
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
        "versions": _versions(),
        "server_tracebacks": len(tracebacks),
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
