"""A control run as a JSON-able table for XCom, and which of its findings need a gate."""

from __future__ import annotations

from typing import Any, Literal

from prodcontrol.evidence.records import ControlRun, Finding
from prodcontrol.runtime import Runtime

FailOn = Literal["policy", "fail", "never"]


def run_of(rt: Runtime, result: Any) -> ControlRun:
    """The recorded run behind whatever ``run_checks`` returned (the store is the truth)."""
    run = getattr(result, "run", None)
    if isinstance(run, ControlRun):
        return rt.store.get_run(run.id)
    run_id = getattr(result, "run_id", None) or (run if isinstance(run, str) else None)
    if run_id is None:
        raise TypeError(f"run_checks returned {type(result).__name__} without a run or run_id")
    return rt.store.get_run(str(run_id))


def findings_of(rt: Runtime, run: ControlRun) -> list[Finding]:
    return [f for f in rt.store.list_findings(model=run.model) if f.run_id == run.id]


def needs_gate(rt: Runtime, finding: Finding) -> bool:
    """The tier's gate policy (DESIGN §1): gated verdicts and blocking findings, not waived."""
    gate = rt.config.tier(rt.config.model(finding.model)).gate
    if gate.mode == "none" or finding.status != "open":
        return False
    return finding.verdict in gate.opens_on or finding.blocking


def verdict_table(rt: Runtime, run: ControlRun) -> dict[str, Any]:
    """What the check task pushes to XCom: the run, one row per control, and the findings."""
    findings = findings_of(rt, run)
    return {
        "run_id": run.id,
        "model": run.model,
        "model_version": run.model_version,
        "tier": run.tier,
        "status": run.status,
        "verdicts": [
            {
                "control_id": v.control_id,
                "kind": v.kind,
                "verdict": v.verdict,
                "value": v.value,
                "warn": v.warn,
                "fail": v.fail,
                "reason": v.reason,
            }
            for v in rt.store.verdicts_for(run.id)
        ],
        "findings": [
            {
                "id": f.id,
                "control_id": f.control_id,
                "verdict": f.verdict,
                "severity": f.severity,
                "blocking": f.blocking,
                "status": f.status,
                "gated": needs_gate(rt, f),
            }
            for f in findings
        ],
    }


def failure_reason(table: dict[str, Any], fail_on: FailOn) -> str | None:
    """Why the check task must fail, or ``None``.

    ``policy``: a blocking finding that no gate will decide (a fail-closed tier without gates,
    say); gated findings leave the decision to the gate task downstream. ``fail``: any ``fail``
    or ``error`` verdict. ``never``: the task only records and reports.
    """
    if fail_on == "never":
        return None
    if fail_on == "fail":
        bad = [v for v in table["verdicts"] if v["verdict"] in ("fail", "error")]
    else:
        bad = [f for f in table["findings"] if f["blocking"] and not f["gated"]]
    if not bad:
        return None
    names = ", ".join(f"{row['control_id']}={row['verdict']}" for row in bad)
    return f"{table['model']} v{table['model_version']} ({table['tier']} tier): {names}"
