"""One close-run for every entry point: the run's gate and its chain's first step commit with
its findings. Real MLflow server (the session's, with the example models seeded), real
Evidently, and the evidence store on SQLite and PostgreSQL.

Each test here failed on the code before the close-run use case: ``prodcontrol check`` opened no
gate, each check started its own chain, step-0 messages of the high tier carried only
[Acknowledge], and concurrent runs or tickers could open two gates or start two chains.
"""

from __future__ import annotations

import threading
from pathlib import Path

from gate_world import TickingClock, make_runtime, record_finding, seeded_registry

from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.messages import ACTION_PREFIX
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.evidence import Notification
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
HIGH = "fraud-detector"


def runtime(state: Path, database_url: str, mlflow_uri: str) -> Runtime:
    settings = Settings(
        state_dir=state,
        inventory_dir=ROOT / "examples",
        catalog_dir=ROOT / "control_catalog",
        mlflow_tracking_uri=mlflow_uri,
        database_url=database_url,
    )
    return Runtime(settings)


def buttons(note: Notification) -> list[str]:
    found = []
    for block in note.payload.get("blocks") or []:
        for element in block.get("elements") or []:
            action = str(element.get("action_id", ""))
            if action.startswith(ACTION_PREFIX):
                found.append(action.removeprefix(ACTION_PREFIX))
    return found


def test_check_opens_the_runs_gate_and_a_second_check_joins_it(
    tmp_path: Path, database_url: str, seeded_mlflow: str
) -> None:
    rt = runtime(tmp_path / "state", database_url, seeded_mlflow)
    first = run_checks(rt, HIGH, trigger="cli")
    assert first.blocking and first.exit_code == 1
    [gate] = rt.store.list_gates(status="pending", model=HIGH)
    assert first.gate_id == gate.id and gate.model_version == first.version
    second = run_checks(rt, HIGH, trigger="cli")  # a newcomer runs it again
    assert second.gate_id == gate.id
    assert [g.id for g in rt.store.list_gates(model=HIGH)] == [gate.id]
    [chain] = rt.store.list_escalations()
    assert (chain.gate_id, chain.finding_id) == (gate.id, gate.finding_id)
    # the second run's blocking findings are listed on the gate it joined
    joined = {f.id for f in rt.store.list_findings(model=HIGH) if f.run_id == second.run_id}
    assert {f for f in joined if f in rt.store.get_gate(gate.id).context["findings"]}


def test_step_zero_messages_of_the_high_tier_carry_approve_for_who_may(
    tmp_path: Path, database_url: str, seeded_mlflow: str
) -> None:
    rt = runtime(tmp_path / "state", database_url, seeded_mlflow)
    result = run_checks(rt, HIGH, trigger="cli")
    gate = rt.store.get_gate(str(result.gate_id))
    step0 = {  # nothing ticked yet: every message is the chain's first step
        n.recipient: n
        for n in rt.store.list_notifications()
        if n.payload.get("kind") == "escalation"
    }
    assert {"chen", "dana"} <= set(step0)  # the model-behaviour and operating-risk owners
    assert all(n.gate_id == gate.id for n in step0.values())
    assert buttons(step0["dana"])[:3] == ["approve", "reject", "acknowledge"]
    # chen asked for the gate (separation of duties): may reject, never approve
    assert gate.requested_by == "chen"
    assert "approve" not in buttons(step0["chen"]) and "reject" in buttons(step0["chen"])


def test_concurrent_run_and_sweep_of_one_version_open_one_gate_and_one_chain(
    tmp_path: Path, database_url: str, seeded_mlflow: str
) -> None:
    """Two processes' worth of runtimes (each its own store connection pool) at once."""
    results: dict[str, object] = {}

    def check(name: str) -> None:
        rt = runtime(tmp_path / name, database_url, seeded_mlflow)
        results[name] = run_checks(rt, HIGH, trigger=name)

    threads = [threading.Thread(target=check, args=(name,)) for name in ("run", "sweep")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rt = runtime(tmp_path / "reader", database_url, seeded_mlflow)
    assert len(rt.store.list_runs(HIGH)) == 2
    [gate] = rt.store.list_gates(model=HIGH)
    assert [e.gate_id for e in rt.store.list_escalations()] == [gate.id]
    assert {getattr(r, "gate_id", None) for r in results.values()} == {gate.id}


def test_two_concurrent_tickers_start_one_chain_for_a_run_recorded_alone(
    tmp_path: Path, database_url: str
) -> None:
    """A run recorded without its chain (by a runner that crashed before the chain, or an
    older prodcontrol): two tickers find it at once and start one chain between them."""
    registry = seeded_registry()
    first = make_runtime(database_url, tmp_path / "a", TickingClock(), registry)
    second = make_runtime(database_url, tmp_path / "b", TickingClock(), registry)
    finding = record_finding(first, "credit-limit-regressor", "2", verdict="warn")
    barrier = threading.Barrier(2)

    def tick(rt: Runtime) -> None:
        barrier.wait()
        escalation.tick(rt)

    threads = [threading.Thread(target=tick, args=(rt,)) for rt in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [chain] = first.store.list_escalations()
    assert chain.finding_id == finding.id
