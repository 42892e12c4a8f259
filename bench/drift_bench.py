"""Drift control vs Evidently ``DataDriftPreset`` on 1,000,000 rows x 15 columns.

The engines see the same seeded data (10 numeric, 5 categorical columns; reference and current
of the same size) in six scenarios:

* ``prodcontrol-<tier>``: :class:`prodcontrol.adapters.evidently.EvidentlyChecker` measuring a
  dataset-scope drift control with the shipped tier's own ``sampling`` (control_catalog/tiers.yaml):
  exact one-pass statistics on all rows, the verdict, and the report plan. The report is not
  part of the control any more: a control run renders one report for all its data controls;
* ``report-<tier>`` (no-drift scenario only): that one report, rendered for this control on the
  tier's sample (results JSON + gzip-compressed full snapshot written; no HTML, which is
  rendered on demand from the snapshot), timed on its own;
* ``preset``: Evidently ``Report([DataDriftPreset()])`` on all rows, JSON + HTML written;
* ``scipy``: a plain full-data SciPy pass (Wasserstein / Jensen-Shannon per column), the floor a
  hand-written check would cost.

Each measurement runs in a fresh subprocess: the data is generated, every engine is warmed up on
1,000 rows, the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``), and only the call
is timed. Peak RSS therefore includes the loaded data and the imports, as a worker would see it.

Run ``python -m bench`` (all benchmarks) or ``python -m bench.drift_bench [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import evidently
import numpy as np
import pandas as pd
import scipy
from evidently import DataDefinition, Report
from evidently import Dataset as EvidentlyDataset
from evidently.presets import DataDriftPreset
from scipy import stats
from scipy.spatial import distance

from prodcontrol.adapters.evidently import EvidentlyChecker
from prodcontrol.catalog.schema import DriftControl, Sampling, Thresholds
from prodcontrol.engine.verdicts import decide
from prodcontrol.ports import Dataset

RESULTS = Path(__file__).parent / "results"
ROWS = 1_000_000
SCALING_ROWS = (10_000, 100_000, 1_000_000)
TIERS = ("low", "medium", "high")
ENGINES = (*(f"prodcontrol-{t}" for t in TIERS), "preset", "scipy")
REPORTS = tuple(f"report-{t}" for t in TIERS)
NUMERIC = [f"num_{i}" for i in range(10)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
LEVELS = {"cat_0": 3, "cat_1": 6, "cat_2": 12, "cat_3": 30, "cat_4": 2}

WARN, FAIL = 0.1, 0.3  # dataset-level thresholds on the share of drifted columns

# --------------------------------------------------------------------------- data


def _numeric(rng: np.random.Generator, index: int, rows: int) -> np.ndarray:
    """Five shapes of numeric column: normal, lognormal, uniform, exponential, counts."""
    shape = index % 5
    if shape == 0:
        return rng.normal(0.0, 1.0, rows)
    if shape == 1:
        return rng.lognormal(0.0, 0.5, rows)
    if shape == 2:
        return rng.uniform(0.0, 10.0, rows)
    if shape == 3:
        return rng.exponential(2.0, rows)
    return rng.poisson(4.0, rows).astype(np.float64)


def _probabilities(levels: int, reverse: bool = False) -> np.ndarray:
    weights = 0.8 ** np.arange(levels)
    weights = weights[::-1] if reverse else weights
    return weights / weights.sum()


def _categorical(rng: np.random.Generator, column: str, rows: int, reverse: bool) -> np.ndarray:
    levels = LEVELS[column]
    codes = rng.choice(levels, size=rows, p=_probabilities(levels, reverse))
    names = np.array([f"{column}_v{k}" for k in range(levels)], dtype=object)
    return names[codes]


def _shift(values: np.ndarray, by_sd: float) -> np.ndarray:
    return values + by_sd * values.std()


def _scale(values: np.ndarray, factor: float) -> np.ndarray:
    return values.mean() + (values - values.mean()) * factor


def _tail(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """A share of the values blown up six times: a heavier right tail, same bulk."""
    values = values.copy()
    picked = rng.random(values.size) < share
    values[picked] = values[picked] * 6.0
    return values


def _new_level(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    values = values.copy()
    values[rng.random(values.size) < share] = "never_seen_before"
    return values


SCENARIOS: dict[str, dict[str, Any]] = {
    "no_drift": {"expected": []},
    "mild_shift_2_columns": {
        "expected": ["num_0", "num_1"],
        "shift": {"num_0": 0.15, "num_1": 0.15},
    },
    "strong_shift_5_columns": {
        "expected": ["num_2", "num_3", "num_4", "cat_0", "cat_2"],
        "shift": {"num_2": 1.0, "num_3": 1.0, "num_4": 1.0},
        "reverse": ["cat_0", "cat_2"],
    },
    "new_category_level": {"expected": ["cat_1"], "new_level": {"cat_1": 0.15}},
    "variance_change_1_column": {"expected": ["num_5"], "scale": {"num_5": 1.5}},
    "tail_outliers_1_column": {"expected": ["num_3"], "tail": {"num_3": 0.03}},
}


def make_frame(rows: int, seed: int, scenario: str | None = None) -> pd.DataFrame:
    """The reference (``scenario=None``) or the current data of a scenario, column by column."""
    rng = np.random.default_rng(seed)
    spec = SCENARIOS[scenario] if scenario else {}
    data: dict[str, np.ndarray] = {}
    for index, column in enumerate(NUMERIC):
        values = _numeric(rng, index, rows)
        if column in spec.get("shift", {}):
            values = _shift(values, spec["shift"][column])
        if column in spec.get("scale", {}):
            values = _scale(values, spec["scale"][column])
        if column in spec.get("tail", {}):
            values = _tail(rng, values, spec["tail"][column])
        data[column] = values
    for column in CATEGORICAL:
        values = _categorical(rng, column, rows, reverse=column in spec.get("reverse", []))
        if column in spec.get("new_level", {}):
            values = _new_level(rng, values, spec["new_level"][column])
        data[column] = values
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- engines


def _definition() -> Any:
    return DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)


def run_preset(reference: pd.DataFrame, current: pd.DataFrame, out_dir: str) -> dict[str, Any]:
    """Evidently's DataDriftPreset on all rows; per-column decisions are Evidently's own tests."""
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        current_data=EvidentlyDataset.from_pandas(current, data_definition=_definition()),
        reference_data=EvidentlyDataset.from_pandas(reference, data_definition=_definition()),
    )
    snapshot.save_json(os.path.join(out_dir, "preset.json"))
    snapshot.save_html(os.path.join(out_dir, "preset.html"))
    summary = snapshot.dict()
    share = next(
        m["value"]["share"]
        for m in summary["metrics"]
        if m["config"]["type"].endswith("DriftedColumnsCount")
    )
    tests = [(t["metric_config"]["params"], t["status"]) for t in summary["tests"]]
    drifted = {
        params["column"]: status == "FAIL"
        for params, status in tests
        if params["type"].endswith("ValueDrift")
    }
    return {"share": float(share), "drifted": drifted}


def tier_sampling(tier: str) -> Sampling:
    """The shipped tier's own sampling, read from control_catalog/tiers.yaml."""
    import yaml

    tiers_file = Path(__file__).parents[1] / "control_catalog" / "tiers.yaml"
    tiers = yaml.safe_load(tiers_file.read_text())
    return Sampling(**tiers["tiers"][tier]["sampling"])


def _control() -> DriftControl:
    return DriftControl(
        id="dataset-drift",
        title="Dataset drift",
        severity="high",
        kind="drift",
        thresholds={"warn": WARN, "fail": FAIL},
        clauses=["bench"],
    )


def _datasets(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[Dataset, Dataset]:
    columns = NUMERIC + CATEGORICAL
    return (
        Dataset(frame=reference, rows=len(reference), columns=columns, source="ref"),
        Dataset(frame=current, rows=len(current), columns=columns, source="cur"),
    )


def run_prodcontrol(
    reference: pd.DataFrame, current: pd.DataFrame, out_dir: str, tier: str
) -> dict[str, Any]:
    """The drift control as a control run measures it: full-data statistics, the verdict."""
    ref, cur = _datasets(reference, current)
    measurement = EvidentlyChecker().measure(
        _control(),
        ref,
        cur,
        sampling=tier_sampling(tier),
        prediction_column=None,
        out_dir=out_dir,
    )
    if measurement.error:
        raise RuntimeError(measurement.error)
    columns = measurement.details["columns"]
    return {
        "share": measurement.value,
        "drifted": {c: d["drifted"] for c, d in columns.items()},
        "methods": {c: d["method"] for c, d in columns.items()},
        "error_bounds": {c: d["error_bound"] for c, d in columns.items()},
        "sample": measurement.sample,
    }


def run_report(
    reference: pd.DataFrame, current: pd.DataFrame, out_dir: str, tier: str
) -> dict[str, Any]:
    """The run's one report for this control on the tier's sample (timed: the render only)."""
    ref, cur = _datasets(reference, current)
    checker, sampling = EvidentlyChecker(), tier_sampling(tier)
    measured = checker.measure(
        _control(), ref, cur, sampling=sampling, prediction_column=None, out_dir=out_dir
    )
    started, cpu = time.perf_counter(), time.process_time()
    report = checker.render_report(
        {"dataset-drift": measured}, ref, cur, sampling=sampling, out_dir=out_dir, title="bench"
    )
    if report.error:
        raise RuntimeError(report.error)
    return {
        "render_seconds": time.perf_counter() - started,
        "render_cpu_seconds": time.process_time() - cpu,
        "share": measured.value,
        "drifted": {c: d["drifted"] for c, d in measured.details["columns"].items()},
        "report_bytes": {a.name: a.size_bytes for a in report.artifacts},
        "sample": report.sample,
    }


def run_scipy(reference: pd.DataFrame, current: pd.DataFrame, out_dir: str) -> dict[str, Any]:
    """The plain full-data pass: SciPy Wasserstein / std for numbers, Jensen-Shannon for labels."""
    drifted: dict[str, bool] = {}
    for column in NUMERIC:
        ref, cur = reference[column].to_numpy(), current[column].to_numpy()
        score = stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001)
        drifted[column] = bool(score >= 0.1)
    for column in CATEGORICAL:
        table = (
            pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1)
            .fillna(0)
            .to_numpy(float)
        )
        score = distance.jensenshannon(
            table[:, 0] / table[:, 0].sum(), table[:, 1] / table[:, 1].sum()
        )
        drifted[column] = bool(score >= 0.1)
    return {"share": sum(drifted.values()) / len(drifted), "drifted": drifted}


RUNNERS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, str], dict[str, Any]]] = {
    **{
        f"prodcontrol-{t}": lambda r, c, o, t=t: run_prodcontrol(r, c, o, t)  # type: ignore[misc]
        for t in TIERS
    },
    **{f"report-{t}": lambda r, c, o, t=t: run_report(r, c, o, t) for t in TIERS},  # type: ignore[misc]
    "preset": run_preset,
    "scipy": run_scipy,
}


# --------------------------------------------------------------------------- one measurement


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Makes VmHWM (peak RSS) start again from the current RSS (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def worker(engine: str, scenario: str, rows: int) -> dict[str, Any]:
    """One timed call in this (fresh) process: data, warm-up, reset peak RSS, call."""
    warnings.filterwarnings("ignore")
    reference, current = make_frame(rows, seed=1), make_frame(rows, seed=2, scenario=scenario)
    runner = RUNNERS[engine]
    with tempfile.TemporaryDirectory() as out_dir:
        runner(make_frame(1000, 3), make_frame(1000, 4), out_dir)
        _reset_peak()
        baseline = _status_kb("VmRSS")
        started, cpu = time.perf_counter(), time.process_time()
        result = runner(reference, current, out_dir)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = _status_kb("VmHWM")
    return {
        "engine": engine,
        "scenario": scenario,
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak / 1024,
        "baseline_rss_mb": baseline / 1024,
        "increment_mb": (peak - baseline) / 1024,
        **result,
    }


CACHE = RESULTS / "drift_bench.cache.jsonl"


def _cached(engine: str, scenario: str, rows: int) -> dict[str, Any] | None:
    """A result this version of the bench already measured (``--resume``)."""
    if not CACHE.exists():
        return None
    for line in CACHE.read_text().splitlines():
        result: dict[str, Any] = json.loads(line)
        if (result["engine"], result["scenario"], result["rows"]) == (engine, scenario, rows):
            return result
    return None


def measure(engine: str, scenario: str, rows: int, resume: bool = False) -> dict[str, Any]:
    """Runs :func:`worker` in a subprocess so memory and imports start clean each time."""
    if resume and (known := _cached(engine, scenario, rows)) is not None:
        return known
    command = [sys.executable, "-m", "bench.drift_bench", "--worker", engine, scenario, str(rows)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine}/{scenario}/{rows} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    RESULTS.mkdir(exist_ok=True)
    with CACHE.open("a") as cache:
        cache.write(json.dumps(result, default=float) + "\n")
    print(
        f"  {engine:18s} {scenario:26s} {rows:>9,} rows  {result['seconds']:8.2f} s  "
        f"({result['cpu_seconds']:.2f} s CPU)  "
        f"peak {result['peak_rss_mb']:7.0f} MB  (+{result['increment_mb']:.0f} MB)",
        flush=True,
    )
    return result


# --------------------------------------------------------------------------- verdicts and report


def verdict(share: float) -> str:
    return decide("dataset-drift", share, Thresholds(warn=WARN, fail=FAIL)).verdict


def agreement(runs: list[dict[str, Any]], engine: str, rows: int) -> dict[str, Any]:
    """How often ``engine`` decides each column and each dataset as the full-data preset does."""
    by_key = {(r["engine"], r["scenario"]): r for r in runs if r["rows"] == rows}
    same_columns = total = same_verdicts = 0
    for scenario in SCENARIOS:
        mine, preset = by_key[(engine, scenario)], by_key[("preset", scenario)]
        for column, drifted in preset["drifted"].items():
            same_columns += mine["drifted"][column] == drifted
            total += 1
        same_verdicts += verdict(mine["share"]) == verdict(preset["share"])
    return {
        "column_decisions_same": same_columns,
        "column_decisions": total,
        "column_agreement": same_columns / total,
        "dataset_verdicts_same": same_verdicts,
        "dataset_verdicts": len(SCENARIOS),
    }


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "evidently": evidently.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }


SCALING_ENGINES = ("prodcontrol-high", "preset", "scipy")


def _plot(runs: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for engine in SCALING_ENGINES:
        points = sorted(
            (r["rows"], r["seconds"])
            for r in runs
            if r["engine"] == engine and r["scenario"] == "no_drift"
        )
        label = "prodcontrol (any tier)" if engine.startswith("prodcontrol") else engine
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axes.set(
        xscale="log",
        yscale="log",
        xlabel="rows in reference and in current (15 columns)",
        ylabel="seconds (one call)",
        title="Drift check time by table size",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def summarize(runs: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    at_scale = [r for r in runs if r["rows"] == rows and r["engine"] in ENGINES]
    totals = {e: [r for r in at_scale if r["engine"] == e] for e in ENGINES}
    mean_seconds = {e: float(np.mean([r["seconds"] for r in rs])) for e, rs in totals.items()}
    mean_cpu = {e: float(np.mean([r["cpu_seconds"] for r in rs])) for e, rs in totals.items()}
    max_peak = {e: float(np.max([r["peak_rss_mb"] for r in rs])) for e, rs in totals.items()}
    max_increment = {e: float(np.max([r["increment_mb"] for r in rs])) for e, rs in totals.items()}
    tiers = {
        tier: {
            "time_ratio": mean_seconds[f"prodcontrol-{tier}"] / mean_seconds["preset"],
            "cpu_ratio": mean_cpu[f"prodcontrol-{tier}"] / mean_cpu["preset"],
            "increment_ratio": max_increment[f"prodcontrol-{tier}"] / max_increment["preset"],
            "peak_ratio": max_peak[f"prodcontrol-{tier}"] / max_peak["preset"],
            "agreement": agreement(runs, f"prodcontrol-{tier}", rows),
        }
        for tier in TIERS
    }
    reports = {
        r["engine"]: {
            "render_seconds": r["render_seconds"],
            "cpu_seconds": r["render_cpu_seconds"],
            "increment_mb": r["increment_mb"],
            "sample_rows": r["sample"]["size"],
            "report_bytes": r["report_bytes"],
        }
        for r in runs
        if r["engine"] in REPORTS and r["rows"] == rows
    }
    return {
        "rows": rows,
        "mean_seconds": mean_seconds,
        "mean_cpu_seconds": mean_cpu,
        "max_peak_rss_mb": max_peak,
        "max_increment_mb": max_increment,
        "tiers": tiers,
        "reports": reports,
        "agreement_scipy": agreement(runs, "scipy", rows),
    }


def markdown(
    runs: list[dict[str, Any]], summary: dict[str, Any], rows: int, scaling: tuple[int, ...]
) -> str:
    lines = [
        "| scenario | engine | seconds | CPU s | peak RSS MB | +MB over data | drifted columns "
        "| share | verdict |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for run in runs:
        if run["rows"] != rows or run["engine"] not in ENGINES:
            continue
        drifted = ", ".join(c for c, d in run["drifted"].items() if d) or "none"
        lines.append(
            f"| {run['scenario']} | {run['engine']} | {run['seconds']:.2f} | "
            f"{run['cpu_seconds']:.2f} | {run['peak_rss_mb']:.0f} | {run['increment_mb']:.0f} | "
            f"{drifted} | {run['share']:.3f} | {verdict(run['share'])} |"
        )
    lines += [
        "",
        "| tier (sampling) | time vs preset | CPU vs preset | +MB vs preset | same verdicts "
        "| same column decisions |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for tier, numbers in summary["tiers"].items():
        agreed = numbers["agreement"]
        lines.append(
            f"| {tier} ({tier_sampling(tier).max_rows:,} rows) | {numbers['time_ratio']:.4f} | "
            f"{numbers['cpu_ratio']:.4f} | {numbers['increment_ratio']:.3f} | "
            f"{agreed['dataset_verdicts_same']}/{agreed['dataset_verdicts']} | "
            f"{agreed['column_decisions_same']}/{agreed['column_decisions']} |"
        )
    lines += [
        "",
        "| the run's one report | sample rows | render s | CPU s | +MB | JSON bytes "
        "| snapshot.json.gz bytes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, numbers in summary["reports"].items():
        sizes = numbers["report_bytes"]
        lines.append(
            f"| {engine} | {numbers['sample_rows']:,} | {numbers['render_seconds']:.2f} | "
            f"{numbers['cpu_seconds']:.2f} | {numbers['increment_mb']:.0f} | "
            f"{sizes.get('run-report.evidently.json', 0):,} | "
            f"{sizes.get('run-report.evidently.snapshot.json.gz', 0):,} |"
        )
    lines += [
        "",
        "| rows | " + " | ".join(SCALING_ENGINES) + " |",
        "|---:|" + "---:|" * len(SCALING_ENGINES),
    ]
    for size in scaling:
        cells = [
            next(
                (
                    f"{r['seconds']:.2f} s"
                    for r in runs
                    if r["rows"] == size and r["engine"] == e and r["scenario"] == "no_drift"
                ),
                "-",
            )
            for e in SCALING_ENGINES
        ]
        lines.append(f"| {size:,} | " + " | ".join(cells) + " |")
    lines += ["", "```", json.dumps(summary, indent=2), "```"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drift_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, to check the harness")
    parser.add_argument(
        "--worker", nargs=3, metavar=("ENGINE", "SCENARIO", "ROWS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--jobs", type=int, default=1, help="measurements side by side")
    parser.add_argument("--resume", action="store_true", help="reuse results/drift_bench.cache")
    args = parser.parse_args(argv)
    if args.worker:
        engine, scenario, rows = args.worker
        print(json.dumps(worker(engine, scenario, int(rows)), default=float))
        return 0
    rows, scaling = (20_000, (5_000, 20_000)) if args.quick else (ROWS, SCALING_ROWS)
    print(f"Drift control vs Evidently DataDriftPreset ({rows:,} rows x 15 columns)", flush=True)
    plan = [(e, s, rows) for s in SCENARIOS for e in ENGINES]
    plan += [(e, "no_drift", rows) for e in REPORTS]
    plan += [(e, "no_drift", n) for n in scaling if n != rows for e in SCALING_ENGINES]
    # the longest first; with --jobs > 1 several fresh processes run side by side (each one's
    # time is then an upper bound: they share the cores)
    order = sorted(plan, key=lambda p: (p[0] != "preset", -p[2]))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = dict(
            zip(order, pool.map(lambda p: measure(*p, resume=args.resume), order), strict=True)
        )
    runs = [done[p] for p in plan]
    summary = summarize(runs, rows)
    RESULTS.mkdir(exist_ok=True)
    suffix = "_quick" if args.quick else ""
    _plot(runs, RESULTS / f"drift_scaling{suffix}.png")
    record = {
        "machine": _machine(),
        "load_average": os.getloadavg(),
        "rows": rows,
        "tier_sampling": {t: tier_sampling(t).model_dump() for t in TIERS},
        "runs": runs,
        "summary": summary,
    }
    (RESULTS / f"drift_bench{suffix}.json").write_text(json.dumps(record, indent=2, default=float))
    table = markdown(runs, summary, rows, scaling)
    (RESULTS / f"drift_bench{suffix}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
