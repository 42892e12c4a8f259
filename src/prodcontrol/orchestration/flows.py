"""The Prefect flows: one model's tier controls, a tier's fleet sweep, and the escalation ticker.

Each model's run is a small chain of tasks, named so the Prefect UI reads like the evidence:
``open <model>`` (starts the control run in the evidence store under an idempotency key),
``<model> · <control>`` per control (retried with backoff while an outside system is
unreachable; the last attempt records the ``error`` verdict) and ``record <model>`` (verdicts,
findings, escalations in one store transaction, then the gates the tier's policy asks for).
The flow then waits on those gates (:mod:`.gate_wait`).

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
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture, wait
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.control.runs.checks import ControlOutcome, RunContext, result_of
from prodcontrol.orchestration import compute, outcome
from prodcontrol.orchestration.gate_wait import SHORT_WAIT_S, wait_for_gate
from prodcontrol.orchestration.runtimes import RuntimeRef, resolve
from prodcontrol.runtime import Runtime

log = logging.getLogger(__name__)

RETRIES = 2
RETRY_DELAY_S = 2.0
"""Seconds before the 2nd attempt of a control whose outside system did not answer; x4 after."""


def retry_delays(first_s: float) -> list[float]:
    """Exponential backoff: ``first_s`` then four times that."""
    return [first_s * 4**i for i in range(RETRIES)]


class TransientControlError(Exception):
    """An outside system did not answer; Prefect retries the task, the last attempt records it."""


class ModelResult(BaseModel):
    """What one model's control run ended with, read back from the evidence store."""

    model_config = ConfigDict(extra="forbid")

    model: str
    tier: str
    status: str = Field(description="recorded, resumed, already recorded, or failed")
    run_id: str | None = None
    model_version: str | None = None
    verdicts: dict[str, str] = Field(default_factory=dict)
    findings: int = 0
    blocking: int = 0
    open_blocking: int = Field(0, description="blocking findings still open (not accepted)")
    gates: list[str] = Field(default_factory=list)
    gate_status: dict[str, str] = Field(default_factory=dict)
    exit_code: int = 0
    error: str | None = None


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


# --------------------------------------------------------------------------- tasks


def _only_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only when an outside system did not answer; a bug fails at once."""
    del task, task_run
    try:
        state.result()
    except TransientControlError:
        return True
    except Exception:
        return False
    return False


@task(name="open-run", task_run_name="open {model}", cache_policy=NO_CACHE)
def open_run_task(
    runtime: RuntimeRef, model: str, idempotency_key: str, flow_run_id: str | None
) -> Any:
    from prodcontrol.control.runs import checks

    return checks.open_run(
        resolve(runtime),
        model,
        trigger="prefect",
        idempotency_key=idempotency_key,
        flow_run_id=flow_run_id,
    )


@task(
    name="measure-control",
    task_run_name="{model} · {control_id}",
    cache_policy=NO_CACHE,
    retries=RETRIES,
    retry_delay_seconds=retry_delays(RETRY_DELAY_S),
    retry_condition_fn=_only_transient,
)
def measure_task(
    runtime: RuntimeRef, ctx: Any, model: str, control_id: str, processes: int = 0
) -> Any:
    """One control; ``None`` when the run was already recorded by an earlier attempt."""
    if ctx.already_finished:
        return None
    context = TaskRunContext.get()
    if context is not None and context.task_run.run_count > 1:
        # the run caches loaded data, failures included: a retry must load again
        ctx = RunContext.model_validate(ctx.model_dump())
    outcome: ControlOutcome = compute.measure(runtime, ctx, control_id, processes)
    last = context is None or context.task_run.run_count > context.task.retries
    if outcome.unreachable and not last:
        raise TransientControlError(f"{model} · {control_id}: {outcome.error}")
    return outcome


@task(name="record-run", task_run_name="record {model}", cache_policy=NO_CACHE)
def close_run_task(
    runtime: RuntimeRef, ctx: Any, model: str, outcomes: list[Any], flow_run_id: str | None
) -> list[str]:
    """Record the run, its gate and its chain's first step in one transaction.

    If an earlier attempt already recorded the run, its gate is adopted (never opened twice)
    and a chain still missing is started. Returns the gate ids.
    """
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.runs import checks

    rt = resolve(runtime)
    if not ctx.already_finished:
        result = checks.close_run(rt, ctx, [o for o in outcomes if o is not None])
        gates = [result.gate_id] if result.gate_id else []
        _show_in_prefect(rt, str(ctx.run_id), gates)
        return gates
    gates = open_gates(rt, model, str(ctx.run_id), flow_run_id)  # a run recorded alone
    escalation.after_run(rt, ctx.run_id)  # starts only the chain still missing
    return gates


def _show_in_prefect(rt: Runtime, run_id: str, gates: list[str]) -> None:
    """The run's table artifact and its events; a Prefect hiccup never loses the evidence."""
    try:
        outcome.publish_run_table(rt, run_id)
        outcome.emit_findings_opened(result_of(rt, run_id))
        for gate_id in gates:
            outcome.emit_gate(rt.store.get_gate(gate_id), "prodcontrol.gate.opened")
    except Exception as exc:  # the store is the source of truth; the UI is a view of it
        log.warning("could not show run %s in Prefect: %s", run_id, exc)


def open_gates(rt: Runtime, model: str, run_id: str, flow_run_id: str | None) -> list[str]:
    """Open (or adopt) the one gate covering the run's blocking findings, when the tier gates.

    One run, one gate: its ``finding_id`` is the worst finding and its context lists them all.
    A still-pending gate of the same model version (an earlier run's) is adopted instead.
    """
    from prodcontrol.control.gates import decisions
    from prodcontrol.control.runs.finding_groups import worst_first

    entry = rt.config.model(model)
    if rt.config.tier(entry).gate.mode == "none":
        return []
    findings = worst_first(
        f
        for f in rt.store.list_findings(model=model)
        if f.run_id == run_id and f.blocking and f.status == "open"
    )
    if not findings:
        return []
    gate = decisions.open_finding_gate(
        rt, findings[0], entry.tier, flow_run_id=flow_run_id, findings=findings
    )
    return [gate.id]


# --------------------------------------------------------------------------- one model's chain


class _Chain:
    """The futures of one model's run, submitted up front so models proceed independently."""

    def __init__(
        self,
        *,
        runtime: RuntimeRef,
        entry: ModelEntry,
        control_ids: Sequence[str],
        key: str,
        flow_run_id: str | None,
        processes: int,
        retry_delay_s: float,
    ) -> None:
        self.entry = entry
        self.flow_run_id = flow_run_id
        self.opened = open_run_task.submit(runtime, entry.name, key, flow_run_id)
        measure = measure_task.with_options(retry_delay_seconds=retry_delays(retry_delay_s))
        measured = [
            measure.submit(runtime, self.opened, entry.name, cid, processes) for cid in control_ids
        ]
        self.closed = close_run_task.submit(runtime, self.opened, entry.name, measured, flow_run_id)
        self.futures: list[PrefectFuture[Any]] = [self.opened, *measured, self.closed]

    def result(self, rt: Runtime) -> ModelResult:
        for future in self.futures:
            state = future.state
            if state.is_failed() or state.is_crashed() or state.is_cancelled():
                return ModelResult(
                    model=self.entry.name,
                    tier=self.entry.tier,
                    status="failed",
                    exit_code=_exit_code_of(state),
                    error=_error_of(state),
                )
        return summarize(
            rt, self.entry, self.opened.result(), self.closed.result(), self.flow_run_id
        )


def _error_of(state: Any) -> str:
    try:
        state.result()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return str(state.message or state.name)


def _exit_code_of(state: Any) -> int:
    try:
        state.result()
    except Exception as exc:
        return int(getattr(exc, "exit_code", 1))
    return 1


def summarize(
    rt: Runtime,
    entry: ModelEntry,
    ctx: RunContext,
    gates: list[str],
    flow_run_id: str | None = None,
) -> ModelResult:
    """The model's result as the evidence store holds it (the source of truth).

    A run recorded by an earlier attempt of this same flow run (a restart after a crash or a
    suspend) is ``resumed``; one recorded by another flow run (the same cron slot, run again) is
    ``already recorded``.
    """
    from prodcontrol.control.runs.checks import result_of

    result = result_of(rt, ctx.run_id)
    status = "recorded"
    if ctx.already_finished:
        earlier = rt.store.get_run(str(ctx.run_id)).flow_run_id
        same = flow_run_id is not None and earlier == flow_run_id
        status = "resumed" if same else "already recorded"
    return ModelResult(
        model=entry.name,
        tier=entry.tier,
        status=status,
        run_id=result.run_id,
        model_version=result.version,
        verdicts={v.control: v.verdict for v in result.verdicts},
        findings=len(result.findings),
        blocking=sum(f.blocking for f in result.findings),
        open_blocking=sum(f.blocking and f.status == "open" for f in result.findings),
        gates=gates,
        gate_status={g: rt.store.get_gate(g).status for g in gates},
        exit_code=result.exit_code,
    )


def _run_chains(
    rt: Runtime,
    runtime: RuntimeRef,
    *,
    entries: Sequence[ModelEntry],
    keys: dict[str, str],
    flow_run_id: str | None,
    processes: int,
    retry_delay_s: float,
) -> list[ModelResult]:
    if processes > 1:
        compute.warm_up(runtime, processes)
    chains = []
    for entry in entries:
        controls = [c.id for c in rt.config.controls_for(entry)]
        key = keys[entry.name]
        chains.append(
            _Chain(
                runtime=runtime,
                entry=entry,
                control_ids=controls,
                key=key,
                flow_run_id=flow_run_id,
                processes=processes,
                retry_delay_s=retry_delay_s,
            )
        )
    wait([f for chain in chains for f in chain.futures])
    return [chain.result(rt) for chain in chains]


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
    [result] = _run_chains(
        rt,
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


@flow(
    name="prodcontrol-sweep",
    flow_run_name="sweep {tier}",
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
) -> Any:
    """Every pilot/production model of ``tier`` (or of every tier) due in this schedule slot.

    Ends in a named state (:mod:`.outcome`) whose result is the SweepReport; :func:`run_sweep`
    returns the report whatever the outcome.

    One model's failure (its data gone, a bug in a check) is reported in its row and never stops
    the others.
    """
    ref = runtime or RuntimeRef()
    rt = resolve(ref)
    procs = default_processes() if processes is None else processes
    entries = rt.config.controlled_models(tier)
    slots = {t: slot or schedule_slot(rt, t) for t in {e.tier for e in entries}}
    keys = {e.name: sweep_key(e.tier, slots[e.tier], e.name) for e in entries}
    flow_run_id = _current_flow_run_id()
    results = _run_chains(
        rt,
        ref,
        entries=entries,
        keys=keys,
        flow_run_id=flow_run_id,
        processes=procs,
        retry_delay_s=retry_delay_s,
    )
    if wait_for_gates:
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
