"""Whole ``prodcontrol check`` of a high-tier model at 1M rows vs what a user would run instead.

Both sides are whole processes, started fresh, on the same Parquet files (1,000,000 rows each of
reference and current: the drift bench's 10 numeric and 5 categorical features, a prediction
score, the target and three columns the model does not use: an id, a device hash, a free-text
note):

* ``check``: ``prodcontrol check fraud-detector --json`` on a copy of the example inventory whose
  ``fraud-detector`` (high tier, all 12 controls, ``sampling.max_rows`` 500,000) reads those
  files; MLflow (SQLite) seeded, the evidence database created before the timed runs. It reads
  the declared columns only, loads the data once for all controls, computes every verdict on all
  rows and renders one Evidently report for the run.
* ``preset``: a script that reads both files with ``pandas.read_parquet``, runs Evidently's
  ``Report([DataDriftPreset(), DataSummaryPreset()])`` on all rows of the 15 features and saves
  the JSON and HTML.

Wall time and CPU time (user + system) come from the process itself, peak RSS from the kernel's
``ru_maxrss`` of the child (``os.wait4``). ``--profile`` also runs the check once under cProfile
and keeps the top of the profile. ``--rows N`` for a smaller harness check (``--quick``: 50,000).

Run ``python -m bench.check_bench [--quick] [--repeat N] [--profile]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
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
import yaml

from bench.drift_bench import CATEGORICAL, NUMERIC, make_frame

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
ROWS = 1_000_000
MODEL = "fraud-detector"
SCENARIO = "strong_shift_5_columns"
TIME_RATIO_GOAL, RSS_RATIO_GOAL = 0.10, 0.75


# --------------------------------------------------------------------------- the data


def frame(rows: int, seed: int, scenario: str | None) -> pd.DataFrame:
    """The 15 features, a prediction score, the target and three columns no control reads."""
    data = make_frame(rows, seed, scenario)
    rng = np.random.default_rng(seed + 100)
    logit = 0.8 * data["num_0"].to_numpy() - 2.0 + rng.normal(0, 0.5, rows)
    data["prediction"] = 1 / (1 + np.exp(-logit))
    data["is_fraud"] = (rng.random(rows) < data["prediction"].to_numpy()).astype(np.int64)
    data["transaction_id"] = np.arange(rows, dtype=np.int64) + seed * rows
    data["device_hash"] = pd.util.hash_array(data["transaction_id"].to_numpy()).astype(str)
    data["note"] = np.where(rng.random(rows) < 0.5, "card present, no remarks", "online order")
    return data


def build(root: Path, rows: int) -> dict[str, str]:
    """Inventory (the examples, fraud-detector on the Parquet files), data, seeded MLflow."""
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.testing.seed import seed_mlflow

    inventory = root / "inventory"
    shutil.copytree(ROOT / "examples", inventory)
    data_dir = inventory / "data"
    frame(rows, 1, None).to_parquet(data_dir / "big-reference.parquet", index=False)
    frame(rows, 2, SCENARIO).to_parquet(data_dir / "big-current.parquet", index=False)
    models_file = inventory / "models.yaml"
    models = yaml.safe_load(models_file.read_text())
    for entry in models["models"]:
        if entry["name"] == MODEL:
            entry["data"] = {
                "reference": {"type": "file", "path": "data/big-reference.parquet"},
                "current": {"type": "file", "path": "data/big-current.parquet"},
                "prediction_column": "prediction",
                "target_column": "is_fraud",
                "numerical": list(NUMERIC),
                "categorical": list(CATEGORICAL),
            }
    models_file.write_text(yaml.safe_dump(models, sort_keys=False))
    state = root / "state"
    env = {
        "PRODCONTROL_CONFIG": str(root / "absent.toml"),
        "PRODCONTROL_STATE_DIR": str(state),
        "PRODCONTROL_INVENTORY_DIR": str(inventory),
        "PRODCONTROL_CATALOG_DIR": str(ROOT / "control_catalog"),
        "PRODCONTROL_MLFLOW_TRACKING_URI": f"sqlite:///{state / 'mlflow.db'}",
    }
    state.mkdir()
    config = load_config(ROOT / "control_catalog", inventory)
    seed_mlflow(env["PRODCONTROL_MLFLOW_TRACKING_URI"], config, log_datasets=False)
    _run([sys.executable, "-m", "prodcontrol", "db", "upgrade"], env)
    return env


# --------------------------------------------------------------------------- the two processes


def _run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One child process: wall and CPU seconds, peak RSS (kernel ru_maxrss), exit code."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # read the pipes while the child runs, so a large output never blocks it
    out, err = child.communicate()
    wall = time.perf_counter() - started
    usage = child_rusage.pop(child.pid, None)
    return {
        "wall_s": wall,
        "cpu_s": usage[0] if usage else None,
        "peak_rss_mb": usage[1] / 1024 if usage else None,
        "exit_code": child.returncode,
        "stdout": out.decode(errors="replace")[-20_000:],
        "stderr": err.decode(errors="replace")[-3_000:],
    }


child_rusage: dict[int, tuple[float, int]] = {}


def _install_wait4() -> None:
    """Popen waits with ``os.waitpid``; this wraps it in ``os.wait4`` to keep the child's rusage."""
    original = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        if pid <= 0:
            return original(pid, options)
        got, status, usage = os.wait4(pid, options)
        if got:
            child_rusage[got] = (usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
        return got, status

    os.waitpid = waitpid  # type: ignore[assignment]


def preset_worker(reference_path: str, current_path: str, out_dir: str) -> None:
    """What a user would run instead: both presets on all rows of the 15 features, saved."""
    from evidently import DataDefinition, Report
    from evidently import Dataset as EvidentlyDataset
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    reference = pd.read_parquet(reference_path)
    current = pd.read_parquet(current_path)
    snapshot = Report([DataDriftPreset(), DataSummaryPreset()]).run(
        current_data=EvidentlyDataset.from_pandas(current, data_definition=definition),
        reference_data=EvidentlyDataset.from_pandas(reference, data_definition=definition),
    )
    snapshot.save_json(os.path.join(out_dir, "preset.json"))
    snapshot.save_html(os.path.join(out_dir, "preset.html"))


def run_check(env: dict[str, str]) -> dict[str, Any]:
    result = _run([sys.executable, "-m", "prodcontrol", "check", MODEL, "--json"], env)
    if result["exit_code"] not in (0, 1):
        raise RuntimeError(f"check failed ({result['exit_code']}):\n{result['stderr']}")
    summary = json.loads(result["stdout"])
    result["verdicts"] = {v["control"]: v["verdict"] for v in summary["verdicts"]}
    result["run_id"] = summary["run_id"]
    result["stored_bytes"] = _run_bytes(Path(env["PRODCONTROL_STATE_DIR"]), summary["run_id"])
    result["stdout"] = ""
    return result


def _run_bytes(state: Path, run_id: str) -> dict[str, int]:
    """Bytes of the run's report files in the state dir, and of their MLflow copies (the newest
    run of the ``prodcontrol-controls`` experiment)."""
    own = sum(p.stat().st_size for p in (state / "artifacts" / run_id).rglob("*") if p.is_file())
    runs = sorted(
        (state / "mlartifacts" / "prodcontrol-controls").glob("*/artifacts"),
        key=lambda p: p.stat().st_mtime,
    )
    mlflow = sum(p.stat().st_size for p in runs[-1].rglob("*") if p.is_file()) if runs else 0
    return {"state_dir": own, "mlflow_copies": mlflow}


def run_preset(root: Path) -> dict[str, Any]:
    data = root / "inventory" / "data"
    with tempfile.TemporaryDirectory() as out_dir:
        command = [
            sys.executable,
            "-m",
            "bench.check_bench",
            "--preset-worker",
            str(data / "big-reference.parquet"),
            str(data / "big-current.parquet"),
            out_dir,
        ]
        result = _run(command, {})
        sizes = {p.name: p.stat().st_size for p in Path(out_dir).iterdir()}
    if result["exit_code"] != 0:
        raise RuntimeError(f"preset failed:\n{result['stderr']}")
    result["stored_bytes"] = sum(sizes.values())
    result["stdout"] = ""
    return result


def profile_check(env: dict[str, str], out: Path) -> list[str]:
    """One check under cProfile; the 30 most expensive calls by cumulative time."""
    stats_file = out.with_suffix(".prof")
    command = [sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "prodcontrol"]
    _run([*command, "check", MODEL, "--json"], env)
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    stats = pstats.Stats(str(stats_file), stream=Sink())  # type: ignore[arg-type]
    stats.sort_stats("cumulative").print_stats(30)
    stats_file.unlink()
    return "".join(lines).splitlines()


# --------------------------------------------------------------------------- report


def versions() -> dict[str, str]:
    import evidently

    import prodcontrol

    return {
        "python": platform.python_version(),
        "evidently": evidently.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "prodcontrol": getattr(prodcontrol, "__version__", "dev"),
    }


def summarize(checks: list[dict[str, Any]], presets: list[dict[str, Any]]) -> dict[str, Any]:
    def best(runs: list[dict[str, Any]], key: str) -> float:
        return min(float(r[key]) for r in runs if r[key] is not None)

    check_wall, preset_wall = best(checks, "wall_s"), best(presets, "wall_s")
    check_rss, preset_rss = best(checks, "peak_rss_mb"), best(presets, "peak_rss_mb")
    return {
        "check_wall_s": check_wall,
        "preset_wall_s": preset_wall,
        "time_ratio": check_wall / preset_wall,
        "check_cpu_s": best(checks, "cpu_s"),
        "preset_cpu_s": best(presets, "cpu_s"),
        "cpu_ratio": best(checks, "cpu_s") / best(presets, "cpu_s"),
        "check_peak_rss_mb": check_rss,
        "preset_peak_rss_mb": preset_rss,
        "rss_ratio": check_rss / preset_rss,
        "check_stored_bytes": checks[-1]["stored_bytes"],
        "preset_stored_bytes": presets[-1]["stored_bytes"],
    }


def markdown(rows: int, checks: list[dict[str, Any]], presets: list[dict[str, Any]]) -> str:
    summary = summarize(checks, presets)
    lines = [
        f"### `prodcontrol check` vs DataDriftPreset + DataSummaryPreset, {rows:,} rows",
        "",
        "| run | process | wall s | CPU s | peak RSS MB |",
        "|---:|---|---:|---:|---:|",
    ]
    for index, (check, preset) in enumerate(zip(checks, presets, strict=True), 1):
        for name, run in (("check", check), ("preset", preset)):
            lines.append(
                f"| {index} | {name} | {run['wall_s']:.2f} | {run['cpu_s']:.2f} | "
                f"{run['peak_rss_mb']:.0f} |"
            )
    lines += [
        "",
        "| measure (best of runs) | check | preset | ratio | goal | met |",
        "|---|---:|---:|---:|---|---|",
        f"| wall time | {summary['check_wall_s']:.2f} s | {summary['preset_wall_s']:.2f} s | "
        f"{summary['time_ratio']:.3f} | <= {TIME_RATIO_GOAL} | "
        f"{'yes' if summary['time_ratio'] <= TIME_RATIO_GOAL else 'no'} |",
        f"| CPU time | {summary['check_cpu_s']:.2f} s | {summary['preset_cpu_s']:.2f} s | "
        f"{summary['cpu_ratio']:.3f} | | |",
        f"| peak RSS | {summary['check_peak_rss_mb']:.0f} MB | "
        f"{summary['preset_peak_rss_mb']:.0f} MB | {summary['rss_ratio']:.3f} | "
        f"<= {RSS_RATIO_GOAL} | {'yes' if summary['rss_ratio'] <= RSS_RATIO_GOAL else 'no'} |",
    ]
    stored = summary["check_stored_bytes"]
    lines += [
        "",
        f"Stored per control run: {stored['state_dir'] / 1e6:.2f} MB in the state dir, "
        f"{stored['mlflow_copies'] / 1e6:.2f} MB of MLflow copies; the preset's JSON + HTML: "
        f"{summary['preset_stored_bytes'] / 1e6:.2f} MB.",
        "",
        "Verdicts: "
        + ", ".join(f"{control} {verdict}" for control, verdict in checks[-1]["verdicts"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.check_bench")
    parser.add_argument("--quick", action="store_true", help="50,000 rows")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--preset-worker", nargs=3, metavar=("REFERENCE", "CURRENT", "OUT"))
    args = parser.parse_args(argv)
    if args.preset_worker:
        preset_worker(*args.preset_worker)
        return 0
    _install_wait4()
    rows = args.rows or (50_000 if args.quick else ROWS)
    RESULTS.mkdir(exist_ok=True)
    name = "check_bench" if rows == ROWS else f"check_bench_{rows}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"building {rows:,}-row data and the inventory ...", flush=True)
        env = build(root, rows)
        checks, presets = [], []
        for index in range(args.repeat):
            checks.append(run_check(env))
            presets.append(run_preset(root))
            for label, run in (("check", checks[-1]), ("preset", presets[-1])):
                print(
                    f"  {index + 1} {label:7s} {run['wall_s']:7.2f} s wall  {run['cpu_s']:7.2f} s "
                    f"CPU  {run['peak_rss_mb']:6.0f} MB peak",
                    flush=True,
                )
        profile = profile_check(env, RESULTS / name) if args.profile else []
    load = os.getloadavg()
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f}",
        "versions": versions(),
        "rows": rows,
        "checks": checks,
        "presets": presets,
        "summary": summarize(checks, presets),
        "profile": profile,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(document, indent=2) + "\n")
    table = markdown(rows, checks, presets)
    (RESULTS / f"{name}.md").write_text(table + "\n```\n" + "\n".join(profile) + "\n```\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
