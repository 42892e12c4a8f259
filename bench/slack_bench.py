"""Escalation to Slack under load: 0 lost, 0 duplicated, and breach-to-accepted latency.

Everything is real except Slack, which is :class:`prodcontrol.testing.slack_server.LocalSlackServer`
(real HTTP on loopback, counting on the server side every message posted under each idempotency
key). The outbox sender runs as a separate process (``OutboxSender`` + ``SlackNotifier`` on the
real slack-sdk ``WebClient``), exactly as ``prodcontrol outbox send --loop`` would.

Scenarios (the findings of one run share one chain and one message; "1 per run" gives one
message per finding, the sender's worst case):

* ``faults``: 1,000 findings (1 per run) across 100 models recorded and escalated first
  (``after_run``, one outbox row each, written in the step's transaction); the server answers
  10 % of calls 429 (``Retry-After: 1``) and 5 % 500; the sender is killed with SIGKILL once
  40 % of the messages were accepted, and restarted. Pass: every key accepted exactly once.
* ``latency``: no faults; 1,000 findings arrive paced (``--rate`` per second) while the sender
  runs; latency = server accept time minus the time ``finish_run`` (the finding) returned.
* ``burst``: no faults; 1,000 findings recorded at once (1 per run, and 10 per run) while the
  sender runs: the latency a burst sees (queueing included), split into breach -> outbox row
  and outbox row -> accepted.
* ``drain``: no faults; 1,000 messages in the outbox before the sender starts: its throughput.

Run ``python -m bench.slack_bench`` (``--quick`` for 200 findings, ``--only NAME`` for one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import slack_sdk

from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.adapters.store.migrate import ensure_schema
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.validate import load_config
from prodcontrol.clock import SystemClock
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.evidence.records import FindingIn, VerdictIn
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing.slack_server import LocalSlackServer

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
ROLES = "business_outcome, data_domain, model_behaviour, workflow_impact, operating_risk"
CONTROLS = [
    "dataset-drift",
    "prediction-drift",
    "dq-missing-share",
    "dq-schema",
    "dq-out-of-range",
    "dq-unseen-categories",
    "performance-vs-baseline",
    "data-freshness",
    "control-run-freshness",
    "review-due",
]
LEASE_SECONDS = 3.0
POLL_SECONDS = 0.02
WORKERS = 16
BATCH = 100


# --------------------------------------------------------------------------- the world


def write_inventory(directory: Path, models: int) -> None:
    """``models`` medium-tier models; model i is owned, every role, by person p{i}."""
    directory.mkdir(parents=True, exist_ok=True)
    people = [
        f"  - {{id: p{i:03d}, name: Owner {i:03d}, slack_id: UP{i:03d}, roles: [{ROLES}]}}"
        for i in range(models)
    ]
    people.append(
        "  - {id: risk, name: Risk Officer, slack_id: URISK0001, roles: [model_risk_officer]}"
    )
    (directory / "people.yaml").write_text("people:\n" + "\n".join(people) + "\n")
    entries = []
    for i in range(models):
        owner = f"p{i:03d}"
        entries.append(
            f"  - name: model-{i:03d}\n    tier: medium\n    stage: production\n"
            "    data:\n      reference: {type: file, path: ref.csv}\n"
            "      current: {type: file, path: cur.csv}\n"
            "    baseline: {metric: auc}\n"
            "    use_case:\n      purpose: Benchmark model.\n"
            "      expected_value: {kpi: uplift, metric_key: uplift, target: 1, "
            "review_date: 2027-01-31}\n"
            "      data_used: [bench data]\n      tier_requested: medium\n"
            "    owners:\n"
            + "".join(
                f"      {role}: {owner}\n"
                for role in (
                    "business_outcome",
                    "data_domain",
                    "model_behaviour",
                    "workflow_impact",
                    "operating_risk",
                )
            )
        )
    (directory / "models.yaml").write_text("models:\n" + "".join(entries))


def runtime(state: Path, url: str) -> Runtime:
    settings = Settings(state_dir=state, inventory_dir=state / "inventory", database_url=url)
    return Runtime(settings, SystemClock())


def record_failures(rt: Runtime, model: str, controls: list[str]) -> tuple[str, float]:
    """One run with a failing verdict and a finding per control, escalated; (run id, breach time).

    The breach time is when the finding is in the evidence store (``finish_run`` committed).
    """
    run = rt.store.start_run(model, "1", "medium", "bench")
    verdicts = [
        VerdictIn(
            control_id=c,
            kind="drift",
            verdict="fail",
            value=0.5,
            warn=0.1,
            fail=0.3,
            direction="higher_is_worse",
            reason="0.5 is at or above fail threshold 0.3",
        )
        for c in controls
    ]
    findings = [FindingIn(control_id=c, severity="high", blocking=True) for c in controls]
    rt.store.finish_run(run.id, "failed", verdicts, [], findings)
    breach = time.time()
    escalation.after_run(rt, run.id)
    return run.id, breach


def record_burst(rt: Runtime, findings: int, models: int, per_run: int = 1) -> dict[str, float]:
    """``findings`` findings as failing runs of ``per_run`` controls each, round-robin over the
    models, as fast as possible; {run id: breach time}.

    The findings of one run share one chain and one message, so ``per_run=1`` gives one
    message per finding (the most messages, the sender's worst case) and ``per_run=10`` one
    message per model (1,000 findings across 100 models as one sweep would record them).
    """
    breach_by_run: dict[str, float] = {}
    for n in range(findings // per_run):
        first = (n // models) * per_run
        controls = [CONTROLS[(first + k) % len(CONTROLS)] for k in range(per_run)]
        run_id, breach = record_failures(rt, f"model-{n % models:03d}", controls)
        breach_by_run[run_id] = breach
    return breach_by_run


# --------------------------------------------------------------------------- the sender process


def sender_main(url: str, inventory: Path, base_url: str, token: str) -> int:
    config = load_config(Settings().resolved_catalog_dir(), inventory)
    store = SqlEvidenceStore(url)
    notifier = SlackNotifier(token, people=config.inventory.people, base_url=base_url, store=store)
    sender = OutboxSender(
        store,
        notifier,
        SystemClock(),
        max_attempts=50,
        lease_seconds=LEASE_SECONDS,
        batch=BATCH,
        workers=WORKERS,
        backoff_base=0.2,
        backoff_max=2.0,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sender.run(stop, poll_seconds=POLL_SECONDS)
    sender.close()
    return 0


def start_sender(url: str, state: Path, server: LocalSlackServer) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "bench.slack_bench",
        "--sender",
        url,
        str(state / "inventory"),
        server.base_url,
        server.token,
    ]
    return subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)


def stop_sender(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for(condition: Any, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return condition()


# --------------------------------------------------------------------------- scenarios


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_SCHEMAS: list[str] = []


def postgres_url(name: str) -> str:
    """A fresh schema in the local PostgreSQL (dropped at the end of the run)."""
    import psycopg

    schema = f"slack_bench_{name}_{os.getpid()}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    PG_SCHEMAS.append(schema)
    return f"{PG_URL}?options={quote(f'-csearch_path={schema}', safe='')}"


def drop_schemas() -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 dbname=test user=postgres", autocommit=True
    ) as conn:
        for schema in PG_SCHEMAS:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def fresh(tmp: Path, name: str, models: int, postgres: bool) -> tuple[Runtime, str, Path]:
    state = tmp / name
    write_inventory(state / "inventory", models)
    url = postgres_url(name) if postgres else f"sqlite:///{state / 'evidence.db'}"
    ensure_schema(url)
    return runtime(state, url), url, state


def delivery_check(rt: Runtime, server: LocalSlackServer) -> dict[str, Any]:
    expected = {n.idempotency_key for n in rt.store.list_notifications()}
    posts = server.posts_by_key()
    return {
        "enqueued": len(expected),
        "accepted_keys": len(posts),
        "lost": len(expected - set(posts)),
        "duplicated": sum(count - 1 for count in posts.values() if count > 1),
        "unexpected": len(set(posts) - expected),
        "dead_letters": len(rt.store.list_notifications(status="dead")),
        "marked_sent": len(rt.store.list_notifications(status="sent")),
    }


def scenario_faults(tmp: Path, findings: int, models: int, postgres: bool) -> dict[str, Any]:
    rt, url, state = fresh(tmp, "faults", models, postgres)
    started = time.monotonic()
    record_burst(rt, findings, models)
    enqueue_seconds = time.monotonic() - started
    messages = len(rt.store.list_notifications())
    with LocalSlackServer() as server:
        server.set_fault_rates(0.10, 0.05, seed=11)
        began = time.monotonic()
        first = start_sender(url, state, server)
        kill_at = int(messages * 0.4)
        wait_for(lambda: len(server.posts_by_key()) >= kill_at, timeout=600)
        first.send_signal(signal.SIGKILL)
        first.wait()
        accepted_at_kill = len(server.posts_by_key())
        in_flight = len(rt.store.list_notifications(status="pending"))
        second = start_sender(url, state, server)
        done = wait_for(
            lambda: len(rt.store.list_notifications(status="pending")) == 0, timeout=900
        )
        drain_seconds = time.monotonic() - began
        stop_sender(second)
        result = delivery_check(rt, server)
        calls, faulted = server.calls(), server.faulted()
    already = sum(1 for n in rt.store.list_notifications() if n.provider_ref.get("already_sent"))
    return {
        "findings": findings,
        "models": models,
        "completed": done,
        "enqueue_seconds": round(enqueue_seconds, 2),
        "drain_seconds": round(drain_seconds, 2),
        "accepted_when_killed": accepted_at_kill,
        "pending_when_killed": in_flight,
        "found_in_history_after_restart": already,
        "calls": dict(calls),
        "faulted": dict(faulted),
        **result,
    }


def latencies(
    rt: Runtime, server: LocalSlackServer, breach_by_run: dict[str, float]
) -> list[float]:
    accepted = server.accepted_at()
    finding_run = {f.id: f.run_id for f in rt.store.list_findings()}
    found = []
    for note in rt.store.list_notifications():
        if note.idempotency_key in accepted and note.finding_id in finding_run:
            found.append(
                accepted[note.idempotency_key] - breach_by_run[finding_run[note.finding_id]]
            )
    return found


def latency_split(
    rt: Runtime, server: LocalSlackServer, breach_by_run: dict[str, float]
) -> dict[str, dict[str, float]]:
    """Where the time goes: breach -> outbox row written (``escalation.after_run``, the
    recording side) and outbox row written -> Slack accepted (the sender)."""
    accepted = server.accepted_at()
    finding_run = {f.id: f.run_id for f in rt.store.list_findings()}
    to_outbox, to_slack = [], []
    for note in rt.store.list_notifications():
        if note.idempotency_key in accepted and note.finding_id in finding_run:
            written = note.created_at.timestamp()
            to_outbox.append(written - breach_by_run[finding_run[note.finding_id]])
            to_slack.append(accepted[note.idempotency_key] - written)
    return {"breach_to_outbox": percentiles(to_outbox), "outbox_to_accepted": percentiles(to_slack)}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {
        "n": len(ordered),
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 1),
    }


def scenario_latency(
    tmp: Path, findings: int, models: int, rate: float, postgres: bool
) -> dict[str, Any]:
    rt, url, state = fresh(tmp, "latency", models, postgres)
    breach_by_run: dict[str, float] = {}
    with LocalSlackServer() as server:
        sender = start_sender(url, state, server)
        time.sleep(1.5)  # the sender process is up and polling
        began = time.monotonic()
        for n in range(findings):
            due = began + n / rate
            time.sleep(max(0.0, due - time.monotonic()))
            model = f"model-{n % models:03d}"
            run_id, breach = record_failures(rt, model, [CONTROLS[(n // models) % len(CONTROLS)]])
            breach_by_run[run_id] = breach
        messages = len(rt.store.list_notifications())
        wait_for(lambda: len(server.posts_by_key()) >= messages, timeout=120)
        stop_sender(sender)
        result = delivery_check(rt, server)
        values = latencies(rt, server, breach_by_run)
    return {
        "findings": findings,
        "rate_per_s": rate,
        **result,
        "latency": percentiles(values),
        "split": latency_split(rt, server, breach_by_run),
    }


def scenario_burst(
    tmp: Path, findings: int, models: int, postgres: bool, per_run: int = 1
) -> dict[str, Any]:
    rt, url, state = fresh(tmp, f"burst{per_run}", models, postgres)
    with LocalSlackServer() as server:
        sender = start_sender(url, state, server)
        time.sleep(1.5)
        began = time.monotonic()
        breach_by_run = record_burst(rt, findings, models, per_run)
        recorded = time.monotonic() - began
        messages = len(rt.store.list_notifications())
        wait_for(lambda: len(server.posts_by_key()) >= messages, timeout=300)
        total = time.monotonic() - began
        stop_sender(sender)
        result = delivery_check(rt, server)
        values = latencies(rt, server, breach_by_run)
        split = latency_split(rt, server, breach_by_run)
    return {
        "findings": findings,
        "findings_per_run": per_run,
        "record_seconds": round(recorded, 2),
        "total_seconds": round(total, 2),
        "messages_per_s": round(messages / total, 1),
        **result,
        "latency": percentiles(values),
        "split": split,
    }


def scenario_drain(tmp: Path, findings: int, models: int, postgres: bool) -> dict[str, Any]:
    """No faults: one message per finding, all in the outbox before the sender starts; how fast
    one sender process empties it (its throughput, free of the recording side's pace)."""
    rt, url, state = fresh(tmp, "drain", models, postgres)
    record_burst(rt, findings, models)
    messages = len(rt.store.list_notifications())
    with LocalSlackServer() as server:
        began = time.monotonic()
        sender = start_sender(url, state, server)
        wait_for(lambda: len(server.posts_by_key()) >= messages, timeout=300, step=0.01)
        first = min(server.accepted_at().values(), default=time.time())
        last = max(server.accepted_at().values(), default=time.time())
        total = time.monotonic() - began
        stop_sender(sender)
        result = delivery_check(rt, server)
    return {
        "findings": findings,
        "seconds_incl_start": round(total, 2),
        "first_to_last_accept_s": round(last - first, 2),
        "messages_per_s": round(messages / max(last - first, 1e-9), 1),
        **result,
    }


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "slack_sdk": slack_sdk.version.__version__,
        "platform": platform.platform(),
    }


def markdown(record: dict[str, Any]) -> str:
    f, lat, burst = record["faults"], record["latency"], record["burst"]
    sweep, drain = record["burst_per_run"], record["drain"]
    db = record["database"]
    lines = [
        f"Database: {db}; sender: 1 process, {WORKERS} threads, batch {BATCH}, "
        f"lease {LEASE_SECONDS:g} s, poll {POLL_SECONDS * 1000:g} ms.",
        "",
        "| scenario | findings | messages | accepted once | lost | duplicated | dead | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        f"| faults (10% 429, 5% 500, kill -9 at {f['accepted_when_killed']} accepted) | "
        f"{f['findings']} | {f['enqueued']} | {f['accepted_keys']} | {f['lost']} | "
        f"{f['duplicated']} | {f['dead_letters']} | "
        f"{f['found_in_history_after_restart']} found in history after restart; "
        f"drained in {f['drain_seconds']} s; faulted calls {sum(f['faulted'].values())} |",
        f"| latency, no faults, {lat['rate_per_s']:g}/s | {lat['findings']} | {lat['enqueued']} | "
        f"{lat['accepted_keys']} | {lat['lost']} | {lat['duplicated']} | {lat['dead_letters']} | |",
    ]
    for name, data in (("burst, 1 finding per run", burst), ("burst, 10 per run", sweep)):
        lines.append(
            f"| {name}, no faults | {data['findings']} | {data['enqueued']} | "
            f"{data['accepted_keys']} | {data['lost']} | {data['duplicated']} | "
            f"{data['dead_letters']} | recorded in {data['record_seconds']} s; "
            f"{data['messages_per_s']} msg/s end to end |"
        )
    lines += [
        f"| drain, outbox full at start | {drain['findings']} | {drain['enqueued']} | "
        f"{drain['accepted_keys']} | {drain['lost']} | {drain['duplicated']} | "
        f"{drain['dead_letters']} | **{drain['messages_per_s']} msg/s** "
        f"(first to last accept {drain['first_to_last_accept_s']} s) |",
        "",
        "| breach-to-accepted latency | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = [
        ("paced, no faults", lat["latency"]),
        ("burst, 1 finding per run", burst["latency"]),
        ("  of which breach -> outbox row", burst["split"]["breach_to_outbox"]),
        ("  of which outbox row -> accepted", burst["split"]["outbox_to_accepted"]),
        ("burst, 10 findings per run", sweep["latency"]),
    ]
    for name, data in rows:
        lines.append(
            f"| {name} | {data.get('n')} | {data.get('p50_ms')} | {data.get('p95_ms')} | "
            f"{data.get('p99_ms')} | {data.get('max_ms')} |"
        )
    return "\n".join(lines)


def run_one(name: str, findings: int, models: int, rate: float, postgres: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="slack-bench-") as directory:
        tmp = Path(directory)
        if name == "faults":
            result = scenario_faults(tmp, findings, models, postgres)
        elif name == "latency":
            result = scenario_latency(tmp, findings, models, rate, postgres)
        elif name == "burst10":
            result = scenario_burst(tmp, findings, models, postgres, per_run=10)
        elif name == "drain":
            result = scenario_drain(tmp, findings, models, postgres)
        else:
            result = scenario_burst(tmp, findings, models, postgres)
    if postgres:
        drop_schemas()
    print(json.dumps(result), flush=True)
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.slack_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 findings across 20 models")
    parser.add_argument("--rate", type=float, default=5.0, help="findings per second (latency)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1:5432/test")
    parser.add_argument(
        "--only",
        choices=["faults", "latency", "burst", "burst10", "drain"],
        help="run one scenario and print it (results files are not written)",
    )
    parser.add_argument("--sender", nargs=4, help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.sender:
        return sender_main(args.sender[0], Path(args.sender[1]), args.sender[2], args.sender[3])
    findings, models = (200, 20) if args.quick else (1000, 100)
    if args.only:
        return run_one(args.only, findings, models, args.rate, args.postgres)
    with tempfile.TemporaryDirectory(prefix="slack-bench-") as name:
        tmp = Path(name)
        print(f"faults: {findings} findings across {models} models ...", flush=True)
        faults = scenario_faults(tmp, findings, models, args.postgres)
        print(json.dumps(faults), flush=True)
        print("latency (paced, no faults) ...", flush=True)
        latency = scenario_latency(tmp, findings, models, args.rate, args.postgres)
        print(json.dumps(latency), flush=True)
        print("burst (no faults, one message per finding) ...", flush=True)
        burst = scenario_burst(tmp, findings, models, args.postgres)
        print(json.dumps(burst), flush=True)
        print("burst (no faults, 10 findings per run) ...", flush=True)
        sweep = scenario_burst(tmp, findings, models, args.postgres, per_run=10)
        print(json.dumps(sweep), flush=True)
        print("drain (no faults, outbox full before the sender starts) ...", flush=True)
        drain = scenario_drain(tmp, findings, models, args.postgres)
        print(json.dumps(drain), flush=True)
    record = {
        "machine": machine(),
        "database": "PostgreSQL" if args.postgres else "SQLite (WAL)",
        "faults": faults,
        "latency": latency,
        "burst": burst,
        "burst_per_run": sweep,
        "drain": drain,
    }
    if args.postgres:
        drop_schemas()
    RESULTS.mkdir(exist_ok=True)
    suffix = ("_quick" if args.quick else "") + ("_postgres" if args.postgres else "")
    (RESULTS / f"slack_bench{suffix}.json").write_text(json.dumps(record, indent=2))
    table = markdown(record)
    (RESULTS / f"slack_bench{suffix}.md").write_text(table + "\n")
    print(table)
    runs = (faults, latency, burst, sweep, drain)
    ok = all(r["lost"] == 0 and r["duplicated"] == 0 for r in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
