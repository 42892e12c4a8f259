"""The one way a gate gets decided, whichever channel the person used (CLI, Slack, web, Airflow).

The rules live in the pure core (:mod:`prodcontrol.engine.gates`): decision rights by role per
tier, two distinct people for ``two_person``, separation of duties, no decision on a closed or
timed-out gate. This module reads the gate and the people, applies the rules, writes the
decision with compare-and-set on the gate's version (one retry on a concurrent change), records
every refusal as evidence, and, when the gate closes, applies its outcome in the registry
(:mod:`prodcontrol.control.gates.actions`: the action is queued in the decision's transaction and
applied right after it, or by the ticker) and tells the rest of the loop through a domain event
written in the same transaction (:mod:`prodcontrol.control.gates.events`: the gate's escalations
stop, its Slack messages update, the flow run waiting on it resumes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prodcontrol.catalog.schema import TierPolicy
from prodcontrol.control.gates import actions, events
from prodcontrol.control.ports import GatePorts
from prodcontrol.control.runs import finding_groups as groups
from prodcontrol.engine import gates as rules
from prodcontrol.errors import DecisionRefused, StoreConflict, UnreachableError
from prodcontrol.evidence.records import (
    Channel,
    DecisionIn,
    DecisionValue,
    DomainEventIn,
    Finding,
    Gate,
    GateIn,
    NotificationIn,
)
from prodcontrol.identity import service as identity

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- deciding


def who_could_decide(rt: GatePorts, gate: Gate, decision: DecisionValue = "approve") -> list[str]:
    """The people who may still take ``decision`` on the gate."""
    entry = rt.config.model(gate.model)
    return rules.could_decide(
        gate,
        decision,
        rt.config.holders_of(entry, gate.right),  # type: ignore[arg-type]
        rt.store.decisions_for(gate.id),
        rt.config.tier(entry).gate.separation_of_duties,
    )


def decide(
    rt: GatePorts,
    gate_id: str,
    *,
    person: str,
    decision: DecisionValue,
    channel: Channel,
    reason: str = "",
    credential: str | None = None,
) -> Gate:
    """Record ``person``'s decision on the gate; apply the outcome when the gate closes.

    Every approval and rejection needs a ``reason``, whatever the channel: a blank one is
    refused (and the refusal recorded) like any other rule.

    ``credential`` names what proved the person (``token:<id>``, ``slack:<user>``, ...): a
    credential that already decided on the gate for someone else is refused (one credential,
    one vote), and it is logged with the decision.

    Raises DecisionRefused (recorded as a ``decision_refused`` event) when the rules refuse,
    StoreConflict when the gate kept changing under two attempts.
    """
    for attempt in range(2):
        gate = rt.store.get_gate(gate_id)
        entry = rt.config.model(gate.model)
        prior = rt.store.decisions_for(gate_id)
        verdict = rules.evaluate_decision(
            gate,
            person=person,
            decision=decision,
            holders=rt.config.holders_of(entry, gate.right),  # type: ignore[arg-type]
            prior=prior,
            separation_of_duties=rt.config.tier(entry).gate.separation_of_duties,
            now=rt.clock.now(),
            known_person=person in rt.config.inventory.people,
        )
        if not reason.strip() and not isinstance(verdict, rules.Refusal):
            verdict = rules.Refusal(
                code="no_reason",
                message=(
                    f"an {decision} of gate {gate.id} needs a reason: say why (it is kept as "
                    f"evidence), e.g. --reason \"drift is seasonal\" on the command line"
                ),
                could_decide=[],
            )
        if gate.kind == "incident" and decision == "approve" and not isinstance(
            verdict, rules.Refusal
        ):
            verdict = _unreported(rt, gate) or verdict
        if credential is not None and not isinstance(verdict, rules.Refusal):
            reused = identity.check_credential(rt, gate_id, person, credential)
            if reused is not None:
                verdict = rules.Refusal(code="same_credential", message=reused, could_decide=[])
        if isinstance(verdict, rules.Refusal):
            _record_refusal(
                rt,
                gate,
                person=person,
                decision=decision,
                channel=channel,
                reason=reason,
                refusal=verdict,
            )
            if verdict.code == "timed_out":
                _expire(rt, gate)
            raise DecisionRefused(verdict.message)
        record = DecisionIn(person=person, decision=decision, channel=channel, reason=reason)
        queued = None
        news: list[DomainEventIn] = []
        if verdict.new_status is not None:
            closing = gate.model_copy(update={"status": verdict.new_status})
            deciders = [d.person for d in prior if d.decision == decision] + [person]
            queued = actions.requested_action(closing, ",".join(deciders))
            news = events.closed_events(closing)
        try:
            updated = rt.store.record_decision(
                gate_id, record, gate.version, verdict.new_status, action=queued, events=news
            )
        except StoreConflict:
            if attempt:
                raise
            continue
        except DecisionRefused as exc:
            refusal = rules.Refusal(code="closed", message=str(exc), could_decide=[])
            _record_refusal(
                rt,
                gate,
                person=person,
                decision=decision,
                channel=channel,
                reason=reason,
                refusal=refusal,
            )
            raise
        if credential is not None:
            _note_credential(rt, updated, person, decision, credential)
        _changed(rt, updated)
        return updated
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _unreported(rt: GatePorts, gate: Gate) -> rules.Refusal | None:
    """A serious incident closes (approve) only once reported to the authority (Art. 73)."""
    from prodcontrol.control.lifecycle import incidents

    if incidents.reported(rt, gate):
        return None
    return rules.Refusal(
        code="not_reported",
        message=(
            f"incident {gate.id} was never reported; report it first (prodcontrol incident "
            "report), or dismiss it (reject) with the reason it is not a serious incident"
        ),
        could_decide=[],
    )


def _record_refusal(
    rt: GatePorts,
    gate: Gate,
    *,
    person: str,
    decision: DecisionValue,
    channel: Channel,
    reason: str,
    refusal: rules.Refusal,
) -> None:
    rt.store.record_event(
        "decision_refused",
        "gate",
        gate.id,
        gate.model,
        {
            "person": person,
            "decision": decision,
            "channel": channel,
            "reason": reason,
            "refused": refusal.code,
            "why": refusal.message,
            "could_decide": refusal.could_decide,
            "gate_version": gate.version,
            "gate_status": gate.status,
        },
    )


def _note_credential(
    rt: GatePorts, gate: Gate, person: str, decision: DecisionValue, credential: str
) -> None:
    identity.note_credential(rt, gate.id, person, credential, rt.clock.now())
    rt.store.record_event(
        "identity.decision_credential",
        "gate",
        gate.id,
        gate.model,
        {"person": person, "decision": decision, "credential": credential},
    )


def _changed(rt: GatePorts, gate: Gate) -> None:
    """After a write that closed the gate: apply its outcome, then dispatch its domain event
    (written with the decision) to the subscribers the composition root gave."""
    if gate.status == "pending":
        return
    try:
        _settle_covered(rt, gate)
        actions.apply_requested(rt, gate_id=gate.id, raise_unreachable=True)
    finally:
        events.dispatch(rt.store, rt.subscribers, rt.clock, gate_id=gate.id)


def _settle_covered(rt: GatePorts, gate: Gate) -> None:
    """An accepting outcome closes every open finding the gate covers, not only its worst one.

    The gate's own ``finding_id`` is closed by :func:`prodcontrol.control.gates.actions.accept` with
    the one registry action; a reject or timeout action (rollback, suspend) leaves the findings
    open, as for a single finding. Waived findings stay waived (their waiver's end re-opens them).
    """
    if gate.kind != "finding" or rules.outcome_action(gate) != "accept":
        return
    how = "approved" if gate.status == "approved" else "accepted on timeout"
    # what it covered while it was pending, findings opened at the very instant it closed included
    as_pending = gate.model_copy(update={"decided_at": None})
    findings = rt.store.list_findings(model=gate.model)
    gates = [as_pending if g.id == gate.id else g for g in rt.store.list_gates(model=gate.model)]
    for finding in groups.covered(as_pending, findings, gates):
        if finding.id != gate.finding_id and finding.status == "open":
            try:  # conditional: a finding someone changed meanwhile keeps their change
                rt.store.set_finding_status(
                    finding.id, "closed", f"{how} at gate {gate.id}", expected="open"
                )
            except StoreConflict:
                continue


# --------------------------------------------------------------------------- timeouts


def _expire(rt: GatePorts, gate: Gate) -> Gate | None:
    """Expire one gate and apply its timeout action; ``None`` if someone closed it first."""
    closing = gate.model_copy(update={"status": "expired"})
    queued = actions.requested_action(closing, "system")
    try:
        closed = rt.store.expire_gate(
            gate.id, gate.version, action=queued, events=events.closed_events(closing)
        )
    except (StoreConflict, DecisionRefused):
        return None
    _changed(rt, closed)
    return closed


def expire_due_gates(rt: GatePorts) -> list[Gate]:
    """Expire every pending gate past its ``due_at`` and apply each tier's timeout action.

    Waived findings whose waivers ended open again here too (time ran out for both).

    An unreachable registry leaves that gate's action queued (the ticker retries it with
    backoff, see :func:`prodcontrol.control.gates.actions.apply_requested`) and does not stop the
    other gates.
    """
    from prodcontrol.control.gates import waivers

    now = rt.clock.now()
    waivers.reopen_expired(rt)
    expired = []
    for due in rules.expiries(rt.store.list_gates(status="pending"), now):
        gate = rt.store.get_gate(due.gate_id)
        try:
            closed = _expire(rt, gate)
        except UnreachableError as exc:
            log.warning("gate %s expired but its %s action failed: %s", gate.id, due.action, exc)
            closed = rt.store.get_gate(gate.id)
        if closed is not None:
            expired.append(closed)
    return expired


# --------------------------------------------------------------------------- opening


def open_finding_gate(
    rt: GatePorts,
    finding: Finding,
    tier: TierPolicy | str,
    flow_run_id: str | None = None,
    *,
    requested_by: str | None = None,
    notifications: Sequence[NotificationIn] = (),
    findings: Sequence[Finding] | None = None,
) -> Gate:
    """The one gate for a finding's control run under the tier's policy; adopted if it exists.

    One run, one gate: the gate covers every gating finding of the run (``findings``; by default
    the run's open blocking findings, ``finding`` included). Its ``finding_id`` is the worst of
    them and ``context["findings"]`` / ``context["controls"]`` list them all, worst first.

    Idempotent: a gate that already covers the finding is returned, pending or closed (a re-run
    after a crash waits on the same gate; a decision is not asked for twice), and so is a gate of
    the same model version that was still pending when the finding opened (a later run adopts
    it, see :mod:`prodcontrol.control.runs.finding_groups`).

    Under separation of duties (the tier's ``gate.separation_of_duties``) and without an
    explicit ``requested_by``, the requester is the model's ``model_behaviour`` owner: the
    person who answers for the model proposes keeping it in service despite the finding, and so
    may not be one of the approvers (independent review, as in SR 11-7's effective challenge).
    """
    gates = rt.store.list_gates(model=finding.model)
    if findings is None:
        findings = [
            f
            for f in rt.store.list_findings(model=finding.model)
            if f.run_id == finding.run_id and f.blocking and f.status == "open"
        ]
    group = groups.worst_first({f.id: f for f in [finding, *findings]}.values())
    mapping = groups.gates_by_finding(gates, group)
    existing = [mapping[f.id] for f in group if f.id in mapping]
    if existing:
        pending = [g for g in existing if g.status == "pending"]
        return (pending or existing)[0]
    policy = rt.config.catalog.tiers[tier] if isinstance(tier, str) else tier
    spec = finding_gate_spec(rt, group, policy, flow_run_id=flow_run_id, requested_by=requested_by)
    try:
        return rt.store.open_gate(spec, notifications)
    except StoreConflict:
        # another run of the version opened its gate first (one pending gate per version)
        for gate in rt.store.list_gates(status="pending", model=finding.model):
            if gate.kind == "finding" and gate.model_version == finding.model_version:
                return gate
        raise


def finding_gate_spec(
    rt: GatePorts,
    group: Sequence[Finding],
    policy: TierPolicy,
    *,
    flow_run_id: str | None = None,
    requested_by: str | None = None,
) -> GateIn:
    """The gate for a run's gating findings (worst first): ``finding_id`` is the worst, the
    context lists them all. Under separation of duties the requester is the model's
    ``model_behaviour`` owner unless ``requested_by`` says otherwise."""
    lead = group[0]
    if requested_by is None and policy.gate.separation_of_duties:
        requested_by = rt.config.model(lead.model).owners.model_behaviour
    return rules.finding_gate(
        policy,
        model=lead.model,
        model_version=lead.model_version,
        finding_id=lead.id,
        now=rt.clock.now(),
        requested_by=requested_by,
        flow_run_id=flow_run_id,
        context={
            "control_id": lead.control_id,
            "verdict": lead.verdict,
            "severity": lead.severity,
            "run_id": lead.run_id,
            "findings": [f.id for f in group],
            "controls": [f.control_id for f in group],
        },
    )


def covered_findings(rt: GatePorts, gate: Gate) -> list[Finding]:
    """Every finding the gate decides on, worst first (see
    :mod:`prodcontrol.control.runs.finding_groups`)."""
    if gate.kind != "finding":
        return []
    findings = rt.store.list_findings(model=gate.model)
    return groups.covered(gate, findings, rt.store.list_gates(model=gate.model))
