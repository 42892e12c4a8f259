"""The Prefect flows: one model's tier controls, a tier's fleet sweep, and the escalation ticker.

Each model's control run is one task, named after the model (``model-0042``): it opens the run
in the evidence store under an idempotency key, measures every control of the tier on data
loaded once (a control whose outside system did not answer is measured again with backoff; the
last attempt records the ``error`` verdict), renders the run's one report and records verdicts,
findings, the gate and the escalation's first step in one store transaction
(:mod:`.model_run`). In a sweep the work runs in one measurement process per core
(:mod:`.compute`). The flow then waits on the gates (:mod:`.gate_wait`).

A tier's sweep can be split over the work pool's workers: ``shards=N`` on its deployment makes
the flow run start N-1 flow runs of the same deployment, each for every N-th model, which any
worker of the pool picks up (:mod:`.shards`); the first flow run does its own share and reports
the whole slot.

Restarting a flow after a crash records nothing twice: the control run is keyed by the flow run
(``run``) or by the tier's schedule slot (``sweep``), so a second attempt finds the run it
started, re-measures only if it never finished, and adopts the gates already opened.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.control.runs.checks import CheckResult
from prodcontrol.errors import UsageError
from prodcontrol.orchestration import compute, outcome
from prodcontrol.orchestration import shards as sharding
from prodcontrol.orchestration.gate_wait import SHORT_WAIT_S, wait_for_gate
from prodcontrol.orchestration.model_run import (
    ModelResult,
    ModelRun,
    ModelRunFailed,
    open_gates,
    summarize,
)
from prodcontrol.orchestration.runtimes import RuntimeRef, resolve
from prodcontrol.runtime import Runtime

__all__ = ["ModelResult", "SweepReport", "open_gates", "summarize"]

log = logging.getLogger(__name__)

RETRIES = 2
RETRY_DELAY_S = 2.0
"""Seconds before the 2nd attempt of a control whose outside system did not answer; x4 after."""


def retry_delays(first_s: float) -> list[float]:
    """Exponential backoff: ``first_s`` then four times that."""
    return [first_s * 4**i for i in range(RETRIES)]


class SweepReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str | None
    slot: str | None
    flow_run_id: str | None
    results: list[ModelResult]

    @property
    def exit_code(self) -> int:
        return max((r.exit_code for r in self.results), default=0)


# --------------------------------------------------------------------------- keys and slots


def schedule_slot(rt: Runtime, tier: str, now: datetime | None = None) -> str:
    """The tier's newest cron fire time at or before ``now``: one control run per model each."""
    from cronsim import CronSim

    policy = rt.config.catalog.tiers[tier]
    zone = ZoneInfo(policy.timezone)
    when = (now or rt.clock.now()).astimezone(zone).replace(second=0, microsecond=0)
    fire: datetime = next(CronSim(policy.schedule, when, reverse=True))
    return fire.isoformat()


def sweep_key(tier: str, slot: str, model: str) -> str:
    return f"sweep:{tier}:{slot}:{model}"


def flow_run_key(flow_run_id: str, model: str) -> str:
    return f"prefect:{flow_run_id}:{model}"


# --------------------------------------------------------------------------- the model task


@task(name="model-controls", task_run_name="{model}", cache_policy=NO_CACHE)
def model_task(
    runtime: RuntimeRef,
    model: str,
    *,
    key: str,
    flow_run_id: str | None,
    processes: int = 0,
    retry_delay_s: float = RETRY_DELAY_S,
) -> ModelResult:
    """One model's control run (:func:`.model_run.record_model`: open, every control of its
    tier on data loaded once, its one report, record), in a measurement worker process when
    ``processes > 1``; then its table artifact and events in Prefect.

    Raises :class:`.model_run.ModelRunFailed` when the run could not be done: the task fails,
    the model's row says why, the other models go on.
    """
    run: ModelRun = compute.record(
        runtime,
        model,
        key=key,
        flow_run_id=flow_run_id,
        retry_delays=retry_delays(retry_delay_s),
        processes=processes,
    )
    if run.recorded_now:
        _show_in_prefect(resolve(runtime), run.check, run.result.gates)
    return run.result


def _show_in_prefect(rt: Runtime, check: CheckResult, gates: list[str]) -> None:
    """The run's table artifact and its events; a Prefect hiccup never loses the evidence."""
    try:
        outcome.publish_run_table(rt, check)
        outcome.emit_findings_opened(check)
        for gate_id in gates:
            outcome.emit_gate(rt.store.get_gate(gate_id), "prodcontrol.gate.opened")
    except Exception as exc:  # the store is the source of truth; the UI is a view of it
        log.warning("could not show run %s in Prefect: %s", check.run_id, exc)


def _failed(entry: ModelEntry, state: Any) -> ModelResult:
    try:
        state.result()
    except ModelRunFailed as exc:
        error, code = exc.message, exc.exit_code
    except Exception as exc:
        error, code = f"{type(exc).__name__}: {exc}", int(getattr(exc, "exit_code", 1))
    else:
        error, code = str(state.message or state.name), 1
    return ModelResult(
        model=entry.name, tier=entry.tier, status="failed", exit_code=code, error=error
    )


def _run_models(
    runtime: RuntimeRef,
    *,
    entries: Sequence[ModelEntry],
    keys: dict[str, str],
    flow_run_id: str | None,
    processes: int,
    retry_delay_s: float,
) -> list[ModelResult]:
    """One task per model, submitted up front so models proceed independently."""
    if processes > 1:
        compute.warm_up(runtime, processes)
    futures = [
        model_task.submit(
            runtime,
            entry.name,
            key=keys[entry.name],
            flow_run_id=flow_run_id,
            processes=processes,
            retry_delay_s=retry_delay_s,
        )
        for entry in entries
    ]
    wait(futures)
    results = []
    for entry, future in zip(entries, futures, strict=True):
        state = future.state
        if state.is_failed() or state.is_crashed() or state.is_cancelled():
            results.append(_failed(entry, state))
        else:
            results.append(future.result())
    return results


def _wait_for_gates(
    rt: Runtime, results: list[ModelResult], short_wait_s: float
) -> list[ModelResult]:
    for result in results:
        for gate_id in result.gates:
            closed = wait_for_gate(rt, gate_id, short_wait_s=short_wait_s)
            result.gate_status[gate_id] = closed.status
    return results


def _current_flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    value = flow_run.id
    return str(value) if value else None


def default_processes() -> int:
    return os.cpu_count() or 1


def thread_runner(processes: int) -> Any:
    """Threads for task runs; enough of them to keep ``processes`` workers busy."""
    return ThreadPoolTaskRunner(max_workers=max(4, 3 * processes))


# --------------------------------------------------------------------------- flows


@flow(
    name="prodcontrol-control-run",
    flow_run_name="controls {model}",
    task_runner=thread_runner(1),
    validate_parameters=True,
)
def control_flow(
    model: str,
    *,
    runtime: RuntimeRef | None = None,
    wait_for_gates: bool = True,
    idempotency_key: str | None = None,
    short_wait_s: float = SHORT_WAIT_S,
    retry_delay_s: float = RETRY_DELAY_S,
) -> Any:
    """Run one model's tier controls once, record them, open and wait on its gates.

    Ends in a named state (:mod:`.outcome`) whose result is the ModelResult: call it through
    :func:`run_control` to get the result whatever the outcome.
    """
    ref = runtime or RuntimeRef()
    rt = resolve(ref)
    entry = rt.config.model(model)
    flow_run_id = _current_flow_run_id()
    key = idempotency_key or flow_run_key(flow_run_id or "local", model)
    [result] = _run_models(
        ref,
        entries=[entry],
        keys={model: key},
        flow_run_id=flow_run_id,
        processes=0,
        retry_delay_s=retry_delay_s,
    )
    if wait_for_gates and result.status != "failed":
        _wait_for_gates(rt, [result], short_wait_s)
    return outcome.final_state([result], result)


def run_control(model: str, **options: Any) -> ModelResult:
    """Run :func:`control_flow` and return its result, whether its final state is
    Completed or Failed (a blocking outcome)."""
    result: ModelResult = outcome.report_of(control_flow(model, return_state=True, **options))
    return result


def sweep_run_name() -> str:
    """``sweep high``; a shard of a split sweep: ``sweep high, shard 2/2``."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    name = f"sweep {parameters.get('tier')}"
    shard, shards = parameters.get("shard"), parameters.get("shards") or 1
    return name if shard is None else f"{name}, shard {int(shard) + 1}/{shards}"


@flow(
    name="prodcontrol-sweep",
    flow_run_name=sweep_run_name,
    task_runner=thread_runner(default_processes()),
    validate_parameters=True,
)
def sweep_flow(
    tier: str | None = None,
    *,
    runtime: RuntimeRef | None = None,
    processes: int | None = None,
    wait_for_gates: bool = False,
    slot: str | None = None,
    short_wait_s: float = SHORT_WAIT_S,
    retry_delay_s: float = RETRY_DELAY_S,
    shards: int = 1,
    shard: int | None = None,
    shard_stall_s: float = sharding.STALL_S,
) -> Any:
    """Every pilot/production model of ``tier`` (or of every tier) due in this schedule slot.

    ``shards=N`` (from a deployment on a work pool): this flow run does every N-th model and
    starts N-1 flow runs of its deployment for the others (``shard=1..N-1``), which the pool's
    workers pick up; it then reports the whole slot, a shard that stops making progress for
    ``shard_stall_s`` seconds (its worker killed) reported as failed models, which the slot's
    next run records.

    Ends in a named state (:mod:`.outcome`) whose result is the SweepReport; :func:`run_sweep`
    returns the report whatever the outcome.

    One model's failure (its data gone, a bug in a check) is reported in its row and never stops
    the others.
    """
    ref = runtime or RuntimeRef()
    rt = resolve(ref)
    procs = default_processes() if processes is None else processes
    entries = rt.config.controlled_models(tier)
    if shards < 1 or (shard is not None and not 0 <= shard < shards):
        raise UsageError(f"shard {shard} of {shards}: give 0 <= shard < shards, shards >= 1")
    if shards > 1 and tier is None:
        raise UsageError("a sweep split over workers (shards > 1) is one tier's: give the tier")
    slots = {t: slot or schedule_slot(rt, t) for t in {e.tier for e in entries}}
    keys = {e.name: sweep_key(e.tier, slots[e.tier], e.name) for e in entries}
    flow_run_id = _current_flow_run_id()
    helpers: list[sharding.Shard] = []
    mine = list(entries)
    if shards > 1:
        mine = list(entries[(shard or 0) :: shards])
        if shard is None:  # the first flow run: start the others on the work pool
            helpers = sharding.start(
                tier=str(tier),
                slot=slots.get(str(tier)),
                entries=entries,
                count=shards,
                parent=flow_run_id,
                retry_delay_s=retry_delay_s,
                processes=processes,
            )
    results = _run_models(
        ref,
        entries=mine,
        keys=keys,
        flow_run_id=flow_run_id,
        processes=procs,
        retry_delay_s=retry_delay_s,
    )
    if helpers:
        results += sharding.collect(rt, helpers, keys, stall_s=shard_stall_s)
        order = {e.name: n for n, e in enumerate(entries)}
        results.sort(key=lambda r: order[r.model])
    if wait_for_gates and shard is None:
        _wait_for_gates(rt, [r for r in results if r.status != "failed"], short_wait_s)
    report = SweepReport(
        tier=tier,
        slot=slots.get(tier) if tier else None,
        flow_run_id=flow_run_id,
        results=results,
    )
    slot_text = ", ".join(sorted(set(slots.values()))) or None
    return outcome.final_state(results, report, slot=slot_text)


def run_sweep(
    tier: str | None,
    runtime: RuntimeRef,
    *,
    processes: int | None = None,
    wait_for_gates: bool = False,
    slot: str | None = None,
    retry_delay_s: float = RETRY_DELAY_S,
) -> SweepReport:
    """Run the sweep flow with a thread pool sized for ``processes`` measurement workers."""
    procs = default_processes() if processes is None else processes
    configured = sweep_flow.with_options(task_runner=thread_runner(procs))
    state = configured(
        tier=tier,
        runtime=runtime,
        processes=procs,
        wait_for_gates=wait_for_gates,
        slot=slot,
        retry_delay_s=retry_delay_s,
        return_state=True,
    )
    report: SweepReport = outcome.report_of(state)
    return report


class TickReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expired_gates: list[str]
    escalations: dict[str, Any]
    resumed_flow_runs: list[str]
    notifications: dict[str, Any] = Field(default_factory=dict)


@flow(name="prodcontrol-escalation-ticker", flow_run_name="escalation tick")
def escalation_ticker_flow(runtime: RuntimeRef | None = None) -> TickReport:
    """Every minute: expire due gates (applying their timeout action), advance escalations,
    deliver the outbox, and resume runs whose gate was decided while nobody watched."""
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.gates import decisions
    from prodcontrol.orchestration.gate_wait import resume_closed_gate_runs

    rt = resolve(runtime or RuntimeRef())
    expired = decisions.expire_due_gates(rt)
    ticked = escalation.tick(rt)
    return TickReport(
        expired_gates=[g.id for g in expired],
        escalations=ticked.as_dict(),
        resumed_flow_runs=resume_closed_gate_runs(rt),
        notifications=_drain_outbox(rt),
    )


def _drain_outbox(rt: Runtime) -> dict[str, Any]:
    from prodcontrol.control.escalation.outbox import OutboxSender

    try:
        notifier = rt.notifier
    except NotImplementedError:
        return {"skipped": "no notifier configured"}
    sender = OutboxSender(rt.store, notifier, rt.clock)
    try:
        report = sender.drain()
    finally:
        sender.close()
    return {k: v for k, v in vars(report).items() if isinstance(v, int | str)}
