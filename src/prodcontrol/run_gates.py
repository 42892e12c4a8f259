"""The gate a closed run needs: one per run, covering its blocking findings (DESIGN §4).

Every entry point that closes a run opens its gate here: the Prefect and Airflow flows, the
demo's simulated days, and the MLflow webhook's re-evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prodcontrol.runtime import Runtime


def open_run_gate(rt: Runtime, model: str, run_id: str, flow_run_id: str | None) -> list[str]:
    """Open (or adopt) the one gate covering the run's blocking findings, when the tier gates.

    One run, one gate: its ``finding_id`` is the worst finding and its context lists them all.
    A still-pending gate of the same model version (an earlier run's) is adopted instead.
    """
    from prodcontrol import decisions
    from prodcontrol.finding_groups import worst_first

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
