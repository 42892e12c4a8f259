"""One model's control run as one unit of work: open, measure every control, record.

A flow runs this once per model, as one Prefect task (``controls <model>``), in the task's thread
or in a measurement worker process (:mod:`.compute`). The run's data is loaded once and shared
by its controls and its one report; a control whose outside system did not answer is measured
again with backoff, and the last attempt records the ``error`` verdict; the run, its verdicts,
findings, gate and escalation start are recorded in one store transaction.

Nothing here imports Prefect: what the run shows in Prefect's UI is done by the task in the flow
process (:func:`prodcontrol.orchestration.flows.model_task`).

Idempotent by the run's key (the flow run, or the tier's schedule slot): a second attempt finds
the run it started, re-measures only if it never finished, and adopts the gate already opened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.control.runs.checks import CheckResult, ControlOutcome, RunContext
from prodcontrol.runtime import Runtime

log = logging.getLogger(__name__)


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


class ModelRun(BaseModel):
    """One model's run as recorded: what the flow reports, and whether this attempt recorded it
    (then the flow shows it in Prefect: its table artifact and its events)."""

    model_config = ConfigDict(extra="forbid")

    result: ModelResult
    check: CheckResult
    recorded_now: bool


class ModelRunFailed(Exception):
    """The model's run could not be done (a bug, a configuration error); the sweep goes on."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code)
        self.message, self.exit_code = message, exit_code

    def __str__(self) -> str:
        return self.message


def record_model(
    rt: Runtime,
    model: str,
    *,
    key: str,
    flow_run_id: str | None,
    retry_delays: Sequence[float],
    sleep: Callable[[float], None] = time.sleep,
) -> ModelRun:
    """Open the run under ``key``, measure its controls, record it; adopt it if already done."""
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.runs import checks

    ctx = checks.open_run(
        rt, model, trigger="prefect", idempotency_key=key, flow_run_id=flow_run_id
    )
    entry = rt.config.model(model)
    if ctx.already_finished:
        gates = open_gates(rt, model, ctx.run_id, flow_run_id)  # a run recorded alone
        escalation.after_run(rt, ctx.run_id)  # starts only the chain still missing
        check = checks.result_of(rt, ctx.run_id)
        return ModelRun(
            result=summarize(rt, entry, ctx, check, gates, flow_run_id=flow_run_id),
            check=check,
            recorded_now=False,
        )
    ctx, outcomes = measure_all(rt, ctx, retry_delays, sleep=sleep)
    check = checks.close_run(rt, ctx, outcomes)
    gates = [check.gate_id] if check.gate_id else []
    return ModelRun(
        result=summarize(rt, entry, ctx, check, gates, flow_run_id=flow_run_id),
        check=check,
        recorded_now=True,
    )


def measure_all(
    rt: Runtime,
    ctx: RunContext,
    retry_delays: Sequence[float],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[RunContext, list[ControlOutcome]]:
    """Every control of the run; those whose outside system did not answer are measured again
    after each delay (with the data loaded afresh); the last attempt's outcome is kept.

    Returns the context whose loaded data the outcomes (and so the run's report) are from.
    """
    from prodcontrol.control.runs import checks

    outcomes = {cid: checks.measure_control(rt, ctx, cid) for cid in ctx.control_ids}
    for delay in retry_delays:
        again = [cid for cid, o in outcomes.items() if o.unreachable]
        if not again:
            break
        log.info("%s: %s unreachable, measuring again in %.1f s", ctx.model, again, delay)
        sleep(delay)
        ctx = RunContext.model_validate(ctx.model_dump())  # the loaded data, failures included
        for cid in again:
            outcomes[cid] = checks.measure_control(rt, ctx, cid)
    return ctx, list(outcomes.values())


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


def summarize(
    rt: Runtime,
    entry: ModelEntry,
    ctx: RunContext,
    check: CheckResult,
    gates: list[str],
    *,
    flow_run_id: str | None = None,
) -> ModelResult:
    """The model's result as the evidence store holds it (the source of truth).

    A run recorded by an earlier attempt of this same flow run (a restart after a crash or a
    suspend) is ``resumed``; one recorded by another flow run (the same cron slot, run again) is
    ``already recorded``.
    """
    status = "recorded"
    if ctx.already_finished:
        earlier = rt.store.get_run(str(ctx.run_id)).flow_run_id
        same = flow_run_id is not None and earlier == flow_run_id
        status = "resumed" if same else "already recorded"
    return _result(rt, entry, status, check, gates)


def _result(
    rt: Runtime, entry: ModelEntry, status: str, check: CheckResult, gates: list[str]
) -> ModelResult:
    return ModelResult(
        model=entry.name,
        tier=entry.tier,
        status=status,
        run_id=check.run_id,
        model_version=check.version,
        verdicts={v.control: v.verdict for v in check.verdicts},
        findings=len(check.findings),
        blocking=sum(f.blocking for f in check.findings),
        open_blocking=sum(f.blocking and f.status == "open" for f in check.findings),
        gates=gates,
        gate_status={g: rt.store.get_gate(g).status for g in gates},
        exit_code=check.exit_code,
    )


def recorded_result(
    rt: Runtime, entry: ModelEntry, key: str, *, by_flow_run: str
) -> ModelResult | None:
    """The finished run under ``key``, as a shard's flow run ``by_flow_run`` left it:
    ``recorded`` if that flow run recorded it, ``already recorded`` if an earlier one did;
    ``None`` if it is not finished."""
    from prodcontrol.control.runs import checks

    runs = [r for r in rt.store.list_runs(entry.name) if r.idempotency_key == key]
    if not runs or runs[0].status == "running":
        return None
    check = checks.result_of(rt, runs[0].id)
    gates = [check.gate_id] if check.gate_id else []
    status = "recorded" if runs[0].flow_run_id == by_flow_run else "already recorded"
    return _result(rt, entry, status, check, gates)
