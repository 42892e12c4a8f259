"""Waivers: a finding accepted for a while, with a reason, an approver and an expiry.

The approver must hold the tier's ``exception`` right; the expiry is at most the tier's
``waiver_max`` away; a waiver never accepts an ``error`` (a control that could not run is
fixed, not waived). Once a waiver expires or is revoked its finding counts again:
:func:`views` feeds :func:`prodcontrol.engine.findings.plan_findings` on the next run (which then
opens a new finding and gate), and :func:`reopen_expired` sets the old finding back to ``open``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prodcontrol.control.gates import actions
from prodcontrol.control.ports import GatePorts
from prodcontrol.engine import gates as rules
from prodcontrol.engine.findings import WaiverView
from prodcontrol.errors import DecisionRefused, StoreConflict, UnreachableError, UsageError
from prodcontrol.evidence.records import Channel, Finding, Waiver, WaiverIn

log = logging.getLogger(__name__)

EXPIRING_SOON = timedelta(days=7)
WaiverState = Literal["active", "expiring", "expired", "revoked"]


class WaiverStatus(BaseModel):
    """A waiver as ``waivers list`` shows it: its state now and the time it has left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    waiver: Waiver
    state: WaiverState
    days_left: float


def state_at(waiver: Waiver, now: datetime) -> WaiverState:
    if waiver.revoked_at is not None and waiver.revoked_at <= now:
        return "revoked"
    if waiver.expires_at <= now:
        return "expired"
    return "expiring" if waiver.expires_at - now <= EXPIRING_SOON else "active"


def _refuse(
    rt: GatePorts, finding: Finding, what: str, problem: str, payload: dict[str, object]
) -> None:
    rt.store.record_event(
        f"waiver_{what}_refused", "finding", finding.id, finding.model, payload | {"why": problem}
    )
    raise DecisionRefused(
        f"waiver {what} for {finding.model}/{finding.control_id} refused: {problem}"
    )


def grant(
    rt: GatePorts,
    finding_id: str,
    *,
    approver: str,
    reason: str,
    expires_at: datetime | None = None,
    valid_for: timedelta | None = None,
    channel: Channel = "cli",
) -> Waiver:
    """Accept a finding until ``expires_at`` (or for ``valid_for``); refusals are recorded."""
    finding = rt.store.get_finding(finding_id)
    entry = rt.config.model(finding.model)
    tier = rt.config.tier(entry)
    now = rt.clock.now()
    if (expires_at is None) == (valid_for is None):
        raise UsageError("give exactly one of an expiry date or a duration for the waiver")
    until = expires_at if expires_at is not None else now + (valid_for or timedelta())
    holders = sorted(rt.config.holders_of(entry, "exception"))
    latest = now + tier.waiver_max
    problem = _grant_problem(
        rt,
        finding,
        approver=approver,
        reason=reason,
        until=until,
        now=now,
        latest=latest,
        holders=holders,
    )
    if problem:
        payload: dict[str, object] = {
            "approver": approver,
            "reason": reason,
            "expires_at": until.isoformat(),
            "channel": channel,
            "could_grant": holders,
        }
        _refuse(rt, finding, "grant", problem, payload)
    waiver = rt.store.grant_waiver(
        WaiverIn(
            finding_id=finding.id,
            model=finding.model,
            control_id=finding.control_id,
            reason=reason.strip(),
            approver=approver,
            expires_at=until,
        )
    )
    try:
        actions.accept_with_waiver(
            rt,
            model=finding.model,
            model_version=finding.model_version,
            by=approver,
            params={"waiver_id": waiver.id, "finding_id": finding.id, "reason": waiver.reason},
            control_id=finding.control_id,
            expires_at=waiver.expires_at.isoformat(timespec="seconds"),
        )
    except UnreachableError as exc:
        log.warning("waiver %s granted; tagging it in the registry failed: %s", waiver.id, exc)
    _approve_pending_gate(rt, finding, approver, waiver, channel)
    return waiver


def _grant_problem(
    rt: GatePorts,
    finding: Finding,
    *,
    approver: str,
    reason: str,
    until: datetime,
    now: datetime,
    latest: datetime,
    holders: list[str],
) -> str | None:
    who = f"who could grant it: {', '.join(holders) or 'nobody (assign the exception right)'}"
    problems = [
        (not reason.strip(), "a waiver needs a reason (--reason)"),
        (approver not in rt.config.inventory.people, f"'{approver}' is not in people.yaml; {who}"),
        (
            approver not in holders,
            f"{approver} does not hold the 'exception' right for {finding.model}; {who}",
        ),
        (
            finding.verdict == "error",
            "an 'error' finding cannot be waived: the control could not run; fix what it "
            "could not reach and run it again",
        ),
        (
            finding.status not in {"open", "waived"},
            f"finding {finding.id} is {finding.status}; only an open finding is waived",
        ),
        (until <= now, f"the expiry {until:%Y-%m-%d %H:%M} is not in the future"),
        (
            until > latest,
            f"the expiry {until:%Y-%m-%d} is beyond the tier's waiver_max; the latest allowed "
            f"is {latest:%Y-%m-%d %H:%M} UTC",
        ),
    ]
    return next((message for failed, message in problems if failed), None)


def _approve_pending_gate(
    rt: GatePorts, finding: Finding, approver: str, waiver: Waiver, channel: Channel
) -> None:
    """A waiver answers the finding's pending gate too, when its approver may approve it.

    A gate covering several findings of a run is approved this way only once every finding it
    covers is waived (or no longer open); until then the other findings still need a decision.
    """
    from prodcontrol.control.gates import decisions
    from prodcontrol.control.runs import finding_groups as groups

    gates = rt.store.list_gates(model=finding.model)
    gate = groups.gates_by_finding(gates, [finding]).get(finding.id)
    if gate is None or gate.status != "pending":
        return
    still_open = [
        f.id
        for f in decisions.covered_findings(rt, gate)
        if f.status == "open" and f.id != finding.id
    ]
    if still_open:
        log.info(
            "waiver %s on %s: gate %s still covers %d open finding(s); it stays pending",
            waiver.id,
            finding.id,
            gate.id,
            len(still_open),
        )
        return
    allowed = approver in decisions.who_could_decide(rt, gate, "approve")
    if allowed and not rules.is_due(gate, rt.clock.now()):
        decisions.decide(
            rt,
            gate.id,
            person=approver,
            decision="approve",
            channel=channel,
            reason=f"waiver {waiver.id}: {waiver.reason}",
        )


def list_waivers(
    rt: GatePorts, model: str | None = None, *, include_inactive: bool = False
) -> list[WaiverStatus]:
    """Waivers, soonest expiry first; ``expiring`` ones end within 7 days."""
    now = rt.clock.now()
    rows = [
        WaiverStatus(
            waiver=w,
            state=state_at(w, now),
            days_left=round((w.expires_at - now).total_seconds() / 86400, 1),
        )
        for w in rt.store.list_waivers(model=model)
    ]
    if not include_inactive:
        rows = [r for r in rows if r.state in {"active", "expiring"}]
    return sorted(rows, key=lambda r: (r.waiver.expires_at, r.waiver.id))


def revoke(rt: GatePorts, waiver_id: str, *, by: str, reason: str) -> Waiver:
    """Revoke a waiver now (an ``exception`` right holder); its finding is open again."""
    waiver = next((w for w in rt.store.list_waivers() if w.id == waiver_id), None)
    if waiver is None:
        raise UsageError(f"no waiver with id {waiver_id!r}; `prodcontrol waivers list --all`")
    finding = rt.store.get_finding(waiver.finding_id)
    holders = sorted(rt.config.holders_of(rt.config.model(waiver.model), "exception"))
    problem = None
    if not reason.strip():
        problem = "revoking needs a reason (--reason)"
    elif by not in holders:
        problem = f"{by} does not hold the 'exception' right; who could: {', '.join(holders)}"
    if problem:
        _refuse(
            rt, finding, "revoke", problem, {"person": by, "reason": reason, "waiver": waiver_id}
        )
    return rt.store.revoke_waiver(waiver_id, by, reason.strip())


def views(rt: GatePorts, model: str, active_at: datetime | None = None) -> list[WaiverView]:
    """The model's waivers as the engine sees them (``plan_findings``): expired ones included
    unless ``active_at`` is given, so an expired waiver no longer accepts its finding.

    A waiver's scope is the finding it was granted on: that model version, that control, and
    verdicts no worse than that finding's.
    """
    now = rt.clock.now()
    found = []
    for w in rt.store.list_waivers(model=model, active_at=active_at):
        granted_on = rt.store.get_finding(w.finding_id)
        found.append(
            WaiverView(
                control_id=w.control_id,
                expires_at=w.expires_at,
                revoked=w.revoked_at is not None and w.revoked_at <= now,
                model_version=granted_on.model_version,
                verdict=granted_on.verdict,
            )
        )
    return found


def reopen_expired(rt: GatePorts, model: str | None = None) -> list[Finding]:
    """Set every waived finding that no active waiver covers any more back to ``open``.

    A waiver covers the finding it names and the later findings of the same model and control
    (a run records those as ``waived`` while the waiver is active).
    """
    now = rt.clock.now()
    by_control: dict[tuple[str, str], list[Waiver]] = {}
    for w in rt.store.list_waivers(model=model):
        by_control.setdefault((w.model, w.control_id), []).append(w)
    reopened = []
    for finding in rt.store.list_findings(model=model, status="waived"):
        covering = by_control.get((finding.model, finding.control_id), [])
        if any(w.active_at(now) for w in covering):
            continue
        last = max(covering, key=lambda w: w.expires_at, default=None)
        if last is None:
            why = "no waiver covers it"
        elif last.revoked_at is not None and last.revoked_at <= now:
            why = f"waiver {last.id} was revoked"
        else:
            why = f"waiver {last.id} expired at {last.expires_at:%Y-%m-%d %H:%M} UTC"
        try:  # conditional: a decision that closed it meanwhile wins
            reopened.append(
                rt.store.set_finding_status(finding.id, "open", why, expected="waived")
            )
        except StoreConflict:
            continue
    return reopened
