"""Gate round trip through a real Prefect server and process worker (issue 13).

A ``prefect server start`` (SQLite, loopback) and a ``prefect worker start --type process`` run
as a team runs them (:mod:`prodcontrol.testing.prefect_server`), the worker polling every second
(``PREFECT_WORKER_QUERY_SECONDS=1``: the knob, no sleep in prodcontrol). A deployment of the
per-model control flow runs on the worker; every medium-tier model drifts, so each run opens a
single-approver gate and waits. For each gate the benchmark writes the decision with
``prodcontrol.control.gates.decisions.decide`` in this process (the gate's domain event,
dispatched right after the decision, resumes the run through the API) and measures from the
moment ``decide`` returned to the flow run's Completed state (Prefect's own timestamp). Two ways a
deployed run waits:

* ``pause``: the gate is due soon (``short_wait_s`` above its deadline), the run's process stays
  and goes on when resumed;
* ``suspend``: the gate is due later (the default for medium and high tiers), the run exits and
  frees the worker; once resumed the worker starts it again in a new process, which finds its
  control run recorded and its gate decided and finishes.

``python -m bench.worker_gate_bench [--quick] [--gates N]`` (default 20 gates per way; --quick 5).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
ROOT_ENV = "WORKER_GATE_BENCH_ROOT"
POOL = "gate-bench"
BATCH = 5
TARGET_P95_S = 5.0
FACTORY = "bench.worker_gate_bench:bench_runtime"


def bench_runtime() -> Any:
    """The runtime every flow run process builds: the files :func:`prepare` wrote, fakes."""
    import pandas as pd

    from bench.gate_bench import DriftEverywhere
    from prodcontrol.adapters.store.sql import SqlEvidenceStore
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import Settings
    from prodcontrol.testing import FakeDatasetSource, FakeRegistry

    root = Path(os.environ[ROOT_ENV])
    config = load_config(root / "catalog", root / "inventory")
    registry = FakeRegistry()
    for name in config.inventory.models:
        registry.add_version(name, "1", tags={"prodcontrol.approved": "true"})
        registry.set_alias(name, "champion", "1")
    datasets = FakeDatasetSource()
    frame = pd.DataFrame({"income": [1.0, 2.0], "employment": ["a", "b"]})
    datasets.add("data/reference.csv", frame)
    datasets.add("data/current.csv", frame)
    url = f"sqlite:///{root / 'evidence.db'}"
    settings = Settings(state_dir=root / "state", inventory_dir=root / "inventory")
    return Runtime(
        settings,
        config=config,
        store=SqlEvidenceStore(url),
        registry=registry,
        metrics=registry,
        datasets=datasets,
        checker=DriftEverywhere(),
    )


def prepare(root: Path, models: int) -> None:
    from bench.gate_bench import build_runtime

    build_runtime(root, models).store.close()  # writes catalog, inventory, evidence.db


def _flow_run(flow_run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def _wait(what: str, check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"{what} within {timeout:.0f} s")


def _waiting_gate(rt: Any, model: str, flow_run_id: str, way: str) -> Any:
    def check() -> Any:
        state = _flow_run(flow_run_id).state
        if state.is_final():
            raise RuntimeError(f"{model}'s run ended {state.name} before waiting: {state.message}")
        gates = rt.store.list_gates(model=model)
        if not gates:
            return None
        waiting = state.is_paused() if way == "pause" else state.name == "Suspended"
        return gates[0] if waiting else None

    return _wait(f"{model}'s run did not {way}", check)


def _stages(flow_run_id: str, decided: datetime) -> dict[str, float]:
    """Seconds from the decision to each state the run entered after it (Prefect's timestamps)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        states = sorted(client.read_flow_run_states(flow_run_id), key=lambda s: s.timestamp)
    after: dict[str, float] = {}
    for state in states:
        if state.timestamp >= decided:
            after.setdefault(state.name, round((state.timestamp - decided).total_seconds(), 3))
    return after


def _completed(rt: Any, flow_run_id: str, model: str) -> Any:
    """The run once final; if the event's resume did not reach Prefect, the ticker's poller
    (``resume_closed_gate_runs``, every minute in production) resumes it after 60 s."""
    from prodcontrol.orchestration.gate_wait import resume_closed_gate_runs

    def final() -> Any:
        flow_run = _flow_run(flow_run_id)
        return flow_run if flow_run.state.is_final() else None

    try:
        return _wait(f"{model}'s run did not complete after the decision", final, timeout=60)
    except TimeoutError:
        print(f"{model}: not resumed after 60 s; the ticker's poller resumes it", flush=True)
        resume_closed_gate_runs(rt)
        return _wait(f"{model}'s run did not complete after the poller", final)


def measure(rt: Any, deployment_id: str, models: list[str], way: str) -> list[dict[str, Any]]:
    from prefect.deployments import run_deployment

    from prodcontrol.control.gates import decisions

    short_wait_s = 10**9 if way == "pause" else 0
    rows: list[dict[str, Any]] = []
    for start in range(0, len(models), BATCH):
        batch = models[start : start + BATCH]
        runs = {
            model: str(
                run_deployment(
                    deployment_id,
                    parameters={
                        "model": model,
                        "runtime": {"factory": FACTORY},
                        "short_wait_s": short_wait_s,
                    },
                    timeout=0,
                ).id
            )
            for model in batch
        }
        gates = {m: _waiting_gate(rt, m, runs[m], way) for m in batch}
        for model in batch:
            gate = gates[model]
            person = decisions.who_could_decide(rt, gate)[0]
            decided = datetime.now(UTC)  # decide() writes the decision, then resumes the run
            decisions.decide(
                rt, gate.id, person=person, decision="approve", channel="cli", reason="bench"
            )
            flow_run = _completed(rt, runs[model], model)
            if not flow_run.state.is_completed():
                raise RuntimeError(f"{model}: {flow_run.state.name}: {flow_run.state.message}")
            total = (flow_run.state.timestamp - decided).total_seconds()
            rows.append({"model": model, "total_s": total, "stages": _stages(runs[model], decided)})
            print(f"{way} {model}: {total:.2f} s {rows[-1]['stages']}", flush=True)
    return rows


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else []
    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(cuts[94] if cuts else ordered[0], 3),
        "max_s": round(ordered[-1], 3),
    }


def _stage_medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Median seconds from the decision to each state (Running, Pending, Completed...)."""
    names = {name for r in rows for name in r["stages"]}
    return {
        name: round(statistics.median([r["stages"][name] for r in rows if name in r["stages"]]), 3)
        for name in sorted(names)
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_gate_bench")
    parser.add_argument("--quick", action="store_true", help="5 gates per way")
    parser.add_argument("--gates", type=int, default=20, help="gates per way (default 20)")
    args, _unknown = parser.parse_known_args(argv)
    per_way = 5 if args.quick else args.gates
    with tempfile.TemporaryDirectory(prefix="worker-gate-bench-") as tmp:
        root = Path(tmp)
        from prodcontrol.testing.prefect_server import PrefectServer

        server = PrefectServer(root / "prefect")
        server.start()
        worker = None
        try:
            os.environ.update(
                {
                    "PREFECT_API_URL": server.api_url,
                    "PREFECT_HOME": str(root / "client-home"),
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                    ROOT_ENV: str(root),
                }
            )
            prepare(root, 2 * per_way)
            worker = server.worker(
                POOL,
                root,
                root / "worker-home",
                {ROOT_ENV: str(root), "PYTHONPATH": str(ROOT)},
            )
            results = _run(root, per_way)
        finally:
            if worker is not None:
                worker.stop()
            server.stop()
        tracebacks = server.tracebacks()
    return _report(results, quick=args.quick, server_tracebacks=len(tracebacks))


def _run(root: Path, per_way: int) -> dict[str, list[dict[str, Any]]]:
    from prefect.types.entrypoint import EntrypointType

    from prodcontrol.orchestration.deploy import ensure_work_pool
    from prodcontrol.orchestration.flows import control_flow
    from prodcontrol.orchestration.runtimes import RuntimeRef, resolve

    ensure_work_pool(POOL)
    deployment_id = str(
        control_flow.to_deployment(
            name="gate-bench", entrypoint_type=EntrypointType.MODULE_PATH
        ).apply(work_pool_name=POOL)
    )
    rt = resolve(RuntimeRef(factory=FACTORY))
    models = sorted(rt.config.inventory.models)
    del root
    return {
        "pause": measure(rt, deployment_id, models[:per_way], "pause"),
        "suspend": measure(rt, deployment_id, models[per_way:], "suspend"),
    }


def _report(
    results: dict[str, list[dict[str, Any]]], *, quick: bool, server_tracebacks: int
) -> int:
    summary: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "python": platform.python_version(),
        "prefect": version("prefect"),
        "sqlalchemy": version("sqlalchemy"),
        "worker_query_seconds": 1,
        "target_p95_s": TARGET_P95_S,
        "server_tracebacks": server_tracebacks,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    lines = [
        "| way | decision to run Completed | n | p50 s | p95 s | max s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for way, rows in results.items():
        stats = _percentiles([r["total_s"] for r in rows])
        summary[way] = stats | {"stage_p50_s": _stage_medians(rows), "runs": rows}
        lines.append(
            f"| {way} | real server + process worker | {stats['n']} | {stats['p50_s']} | "
            f"{stats['p95_s']} | {stats['max_s']} |"
        )
    summary["met"] = {w: summary[w]["p95_s"] <= TARGET_P95_S for w in results}
    RESULTS.mkdir(exist_ok=True)
    name = "worker_gate_bench_quick" if quick else "worker_gate_bench"
    (RESULTS / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(summary["met"].values()) and not server_tracebacks else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
