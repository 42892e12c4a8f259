"""Which verdicts need a person: findings, and whether they block, gate or only notify.

Policy comes from the tier (DESIGN §1): a low tier notifies only; medium and high open gates on
the verdicts their policy names; a fail-closed tier turns ``error`` into a blocking finding.
An active waiver accepts a finding without gating it only within its scope: the same model
version, the same control, and a verdict no worse than the one waived. A worse verdict or a new
version opens a finding as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from prodcontrol.catalog.schema import VERDICT_ORDER, Control, TierPolicy
from prodcontrol.catalog.types import VerdictValue
from prodcontrol.engine.verdicts import Decided


class WaiverView(BaseModel):
    """What the engine needs to know of a waiver."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_id: str
    expires_at: datetime
    revoked: bool = False
    model_version: str | None = None
    verdict: VerdictValue = "warn"

    def covers(self, control_id: str, verdict: VerdictValue, model_version: str | None) -> bool:
        """Whether this waiver accepts ``verdict`` of ``control_id`` on ``model_version``."""
        same_version = self.model_version is None or self.model_version == model_version
        no_worse = VERDICT_ORDER[verdict] <= VERDICT_ORDER[self.verdict]
        return control_id == self.control_id and same_version and no_worse


class FindingPlan(BaseModel):
    """A finding to record, and what it sets off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_id: str
    verdict: VerdictValue
    severity: str
    blocking: bool
    opens_gate: bool
    escalates: bool
    waived: bool
    reason: str


def plan_findings(
    decided: Iterable[Decided],
    controls: dict[str, Control],
    tier: TierPolicy,
    waivers: Iterable[WaiverView],
    now: datetime,
    *,
    model_version: str | None = None,
) -> list[FindingPlan]:
    """One plan per warn, fail or error verdict, in the order the verdicts came.

    ``model_version`` is the run's: a waiver granted on another version covers nothing here.
    """
    active = [w for w in waivers if not w.revoked and w.expires_at > now]
    plans = []
    for item in decided:
        if item.verdict in ("pass", "not_applicable"):
            continue
        gated = tier.gate.mode != "none" and item.verdict in tier.gate.opens_on
        blocking = gated or (tier.fail_closed and item.verdict == "error")
        waived = item.verdict != "error" and any(
            w.covers(item.control_id, item.verdict, model_version) for w in active
        )
        plans.append(
            FindingPlan(
                control_id=item.control_id,
                verdict=item.verdict,
                severity=controls[item.control_id].severity,
                blocking=blocking and not waived,
                opens_gate=(gated or blocking) and not waived and tier.gate.mode != "none",
                escalates=not waived,
                waived=waived,
                reason=item.reason,
            )
        )
    return plans


def run_exit_code(verdicts: Iterable[VerdictValue], unreachable: bool) -> int:
    """CLI exit code of a run: 3 if an outside system was unreachable, 1 if a control failed."""
    values = list(verdicts)
    if unreachable:
        return 3
    if "fail" in values or "error" in values:
        return 1
    return 0
