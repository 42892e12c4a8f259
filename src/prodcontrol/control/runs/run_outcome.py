"""What a recorded control run sets off, decided inside the run's own transaction.

Every entry point (CLI ``check``, ``run``, ``sweep``, the Prefect flows, the Airflow provider)
closes a run through :func:`prodcontrol.control.runs.checks.close_run`, which hands this follow-up
to the store's ``close_run``: the verdicts, the findings, the run's one gate and its chain's first
step (with the Approve/Reject buttons each recipient's rights allow, because the gate exists by
then) commit together. A later run of the same model version joins the version's pending gate; the
database's unique keys refuse a second pending gate per version and a second chain per lead
finding, so concurrent runs, sweeps and tickers cannot duplicate them.
"""

from __future__ import annotations

from collections.abc import Sequence

from prodcontrol.catalog.schema import TierPolicy
from prodcontrol.control.escalation import escalation
from prodcontrol.control.gates import decisions
from prodcontrol.control.ports import TickPorts
from prodcontrol.control.runs import finding_groups as groups
from prodcontrol.evidence.port import FirstStep
from prodcontrol.evidence.records import ControlRun, Finding, Gate, GateIn, Verdict


class RunOutcome:
    """The :class:`~prodcontrol.evidence.port.RunFollowUp` of one model's run."""

    def __init__(self, rt: TickPorts, tier: TierPolicy) -> None:
        self.rt, self.tier = rt, tier

    def gate(
        self, run: ControlRun, findings: Sequence[Finding], pending: Gate | None
    ) -> Gate | GateIn | None:
        if self.tier.gate.mode == "none":
            return None
        gating = groups.worst_first(f for f in findings if f.blocking and f.status == "open")
        if not gating:
            return None
        if pending is not None:
            return pending
        return decisions.finding_gate_spec(self.rt, gating, self.tier, flow_run_id=run.flow_run_id)

    def first_step(
        self,
        run: ControlRun,
        verdicts: Sequence[Verdict],
        findings: Sequence[Finding],
        gate: Gate | None,
    ) -> FirstStep | None:
        return escalation.first_step(self.rt, run, verdicts, findings, gate)
