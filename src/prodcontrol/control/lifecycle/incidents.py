"""The serious-incident register (EU AI Act Art. 73): open, report, close, chase the deadline.

An incident is a gate of kind ``incident`` on the model (its facts, case and reporting deadline
in the gate's context; no registry action on any outcome, and no timeout: a deadline that
passes is escalated, never decided by silence), with one escalation chain keyed by the gate.
Every step is evidence through the store: the gate, the ``incident.opened`` /
``incident.reported`` / ``incident.deadline_missed`` events, each chain step with its messages,
and the closing decision.

- :func:`open_incident`: anyone in people.yaml with a personal token opens one; the deadline is
  computed from the awareness date by :mod:`prodcontrol.engine.incidents`; the tier's chain and
  its risk channel are told at once and reminded until the report is made.
- :func:`report`: a holder of the gate's right (``escalation_outcome`` of the model's tier)
  records an initial or complete report to the authority (Art. 73(5)), with the facts known so
  far; that acknowledges the chain (the reminders stop) and is the only way to acknowledge it.
- :func:`close`: the same right holders close it through :func:`decisions.decide` (approve:
  reported and investigated; reject: not a serious incident after assessment), so identity,
  rights, refusals and credentials are checked as for every decision. Approving needs a report.
- :func:`tick_one`: the escalation ticker's step for an incident chain: reminders until the
  report, and once the deadline has passed unreported, one message to the risk channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from prodcontrol.catalog.schema import EscalationPolicy, ModelEntry
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.control.gates import decisions
from prodcontrol.control.ports import EvidencePorts, RunPorts, TickPorts
from prodcontrol.engine import escalation as timing
from prodcontrol.engine import incidents as rules
from prodcontrol.errors import DecisionRefused, ProdControlError, StoreConflict, UsageError
from prodcontrol.evidence.records import (
    Channel,
    Escalation,
    EscalationIn,
    Gate,
    GateIn,
    NotificationIn,
)

if TYPE_CHECKING:
    from prodcontrol.control.escalation.escalation import TickResult

KIND = "incident"
RIGHT: DecisionRight = "escalation_outcome"


class IncidentView(BaseModel):
    """One incident as ``incident list`` and the web pages show it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    model: str
    model_version: str
    case: str
    clause: str
    summary: str
    status: str
    aware_at: datetime
    deadline: datetime
    reported_at: datetime | None
    reported_by: str | None
    overdue: bool
    closed_at: datetime | None


# --------------------------------------------------------------------------- opening


def open_incident(
    rt: RunPorts,
    model: str,
    *,
    person: str,
    case: str,
    summary: str,
    aware_at: datetime | None = None,
    occurred_at: datetime | None = None,
    causal_link: str = "under-investigation",
    affected_persons: str | None = None,
    member_states: list[str] | None = None,
    harm: str | None = None,
    credential: str | None = None,
) -> Gate:
    """Open a serious incident on ``model``, start its chain, return its gate."""
    entry = rt.config.model(model)
    rt.config.person(person)
    now = rt.clock.now()
    try:
        rule = rules.rule_for(case)
    except ValueError as exc:
        raise UsageError(f"--severity: {exc}") from None
    if causal_link not in rules.CausalLink.__args__:  # type: ignore[attr-defined]
        raise UsageError(
            f"--causal-link: '{causal_link}' is not one of " + ", ".join(rules.CausalLink.__args__)  # type: ignore[attr-defined]
        )
    aware = aware_at or now
    if aware > now:
        raise UsageError(f"--aware-at {aware.isoformat()} is in the future; give when you learnt")
    if not summary.strip():
        raise UsageError("--summary: say what happened (it goes into the report)")
    version = _serving_version(rt, entry)
    deadline = rules.reporting_deadline(case, aware)
    context: dict[str, Any] = {
        "case": case,
        "definition": rule.definition,
        "deadline_clause": rule.deadline_clause,
        "deadline_days": rule.days,
        "summary": summary,
        "aware_at": aware.isoformat(),
        "occurred_at": occurred_at.isoformat() if occurred_at else None,
        "deadline": deadline.isoformat(),
        "causal_link": causal_link,
        "affected_persons": affected_persons,
        "member_states": list(member_states or []),
        "harm": harm,
        "credential": credential,
    }
    gate = rt.store.open_gate(
        GateIn(
            model=model,
            model_version=version,
            kind=KIND,
            right=RIGHT,
            required_approvals=1,
            requested_by=person,
            context=context,
        )
    )
    rt.store.record_event("incident.opened", "gate", gate.id, model, {"person": person, **context})
    _start_chain(rt, entry, gate)
    return gate


def _serving_version(rt: RunPorts, entry: ModelEntry) -> str:
    """The version serving now; an incident is opened even when MLflow does not answer."""
    try:
        return rt.metrics.resolve_alias(entry.name, entry.serving_alias).version
    except ProdControlError:
        return "unknown"


def _start_chain(rt: TickPorts, entry: ModelEntry, gate: Gate) -> Escalation:
    now = rt.clock.now()
    chain = policy(rt, entry, gate, now)
    advance = timing.start(chain, now)
    messages = _messages(rt, entry, gate, chain, advance.positions, now=now)
    record = EscalationIn(
        gate_id=gate.id,
        model=gate.model,
        tier=entry.tier,
        step=advance.step,
        next_due_at=advance.next_due_at,
    )
    return rt.store.start_escalation(record, messages)


def policy(rt: TickPorts, entry: ModelEntry, gate: Gate, started_at: datetime) -> EscalationPolicy:
    """The incident's chain: the tier's people and risk channel, SLA timers from the deadline."""
    tier = rt.config.tier(entry)
    aware = datetime.fromisoformat(str(gate.context["aware_at"]))
    case = str(gate.context["case"])
    return rules.escalation(tier.escalation, tier.risk_channel, aware, started_at, case)


# --------------------------------------------------------------------------- messages


def _messages(
    rt: TickPorts,
    entry: ModelEntry,
    gate: Gate,
    chain: EscalationPolicy,
    positions: tuple[int, ...],
    *,
    now: datetime,
) -> list[NotificationIn]:
    from prodcontrol.control.escalation.escalation import recipients

    seen: set[tuple[str, str]] = set()
    messages = []
    for position in positions:
        for kind, recipient in recipients(rt, entry, chain, position):
            if (kind, recipient) in seen:
                continue
            seen.add((kind, recipient))
            text = _text(rt, gate, now, reminder=timing.is_reminder(chain, position))
            messages.append(
                _note(
                    rt,
                    gate,
                    f"incident:{gate.id}:{position}:{kind}:{recipient}",
                    (kind, recipient),
                    text,
                )
            )
    return messages


def _note(rt: TickPorts, gate: Gate, key: str, to: tuple[str, str], text: str) -> NotificationIn:
    kind, recipient = to
    url = f"{rt.settings.web_base_url.rstrip('/')}/models/{gate.model}"
    return NotificationIn(
        idempotency_key=key,
        recipient_kind="person" if kind == "person" else "channel",
        recipient=recipient,
        payload={
            "kind": "incident",
            "model": gate.model,
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            "evidence_url": url,
            "incident": gate.id,
        },
        gate_id=gate.id,
    )


def _text(rt: TickPorts, gate: Gate, now: datetime, *, reminder: bool) -> str:
    context = gate.context
    rule = rules.rule_for(str(context["case"]))
    deadline = datetime.fromisoformat(str(context["deadline"]))
    left = deadline - now
    hours = max(0, int(left.total_seconds() // 3600))
    when = deadline.strftime("%Y-%m-%d %H:%M UTC")
    prefix = "Reminder: serious incident" if reminder else ":rotating_light: Serious incident"
    return (
        f"{prefix} {gate.id[:8]} on *{gate.model}* (version {gate.model_version}): "
        f"{rule.what} ({rule.definition}). {context.get('summary', '')} "
        f"Report it to the market surveillance authority by *{when}* ({rule.deadline_clause}, "
        f"{rule.days} days after awareness; {hours} h left) and do not change the system in a way "
        f"that could affect the evaluation of its causes first (Art. 73(6)). Once reported: "
        f"`prodcontrol incident report {gate.id} --kind initial --reference REF`."
    )


# --------------------------------------------------------------------------- the ticker


def tick_one(
    rt: TickPorts, escalation: Escalation, gate: Gate, now: datetime, result: TickResult
) -> None:
    """Advance an incident chain: reminders until reported, one alarm once the deadline passed."""
    try:
        entry = rt.config.model(gate.model)
    except UsageError:
        return
    chain = policy(rt, entry, gate, escalation.started_at)
    if escalation.status == "active" and escalation.next_due_at and escalation.next_due_at <= now:
        advance = timing.plan(chain, escalation.started_at, escalation.step, now)
        if advance is not None:
            messages = _messages(rt, entry, gate, chain, advance.positions, now=now)
            try:
                rt.store.advance_escalation(
                    escalation.id, advance.step, advance.next_due_at, messages
                )
                result.advanced += 1
                result.reminders += int(
                    any(timing.is_reminder(chain, p) for p in advance.positions)
                )
            except StoreConflict:
                pass  # reported or advanced by someone else meanwhile
    deadline = datetime.fromisoformat(str(gate.context["deadline"]))
    if escalation.acknowledged_at is None and now > deadline:
        _deadline_missed(rt, entry, gate, deadline)
    for breach in timing.breaches(
        chain, escalation.started_at, now, acknowledged_at=escalation.acknowledged_at
    ):
        result.breaches[breach] += 1


def _deadline_missed(rt: TickPorts, entry: ModelEntry, gate: Gate, deadline: datetime) -> None:
    key = f"incident:{gate.id}:deadline-missed"
    if any(n.idempotency_key == key for n in rt.store.notifications_about(gate_id=gate.id)):
        return
    channel = rt.config.tier(entry).risk_channel
    text = (
        f":warning: The reporting deadline of serious incident {gate.id[:8]} on *{gate.model}* "
        f"passed at {deadline.strftime('%Y-%m-%d %H:%M UTC')} without a report "
        f"({gate.context.get('deadline_clause')}). Report now: "
        f"`prodcontrol incident report {gate.id} --kind initial --reference REF`."
    )
    rt.store.enqueue([_note(rt, gate, key, ("channel", channel), text)])
    rt.store.record_event(
        "incident.deadline_missed",
        "gate",
        gate.id,
        gate.model,
        {"deadline": deadline.isoformat(), "risk_channel": channel},
    )


# --------------------------------------------------------------------------- people acting


def get(rt: EvidencePorts, incident_id: str) -> Gate:
    gate = rt.store.get_gate(incident_id)
    if gate.kind != KIND:
        raise UsageError(f"{incident_id} is a {gate.kind} gate, not an incident")
    return gate


def chain_of(rt: EvidencePorts, gate: Gate) -> Escalation | None:
    found = [e for e in rt.store.list_escalations() if e.gate_id == gate.id]
    return found[-1] if found else None


def _holder(rt: TickPorts, gate: Gate, person: str, what: str, channel: Channel) -> None:
    """Only holders of the incident's right report it; a refusal is evidence."""
    entry = rt.config.model(gate.model)
    rt.config.person(person)
    holders = rt.config.holders_of(entry, RIGHT)
    if person in holders:
        return
    rt.store.record_event(
        "incident.refused",
        "gate",
        gate.id,
        gate.model,
        {"person": person, "action": what, "channel": channel, "holders": sorted(holders)},
    )
    raise DecisionRefused(
        f"{person} may not {what} incident {gate.id} on {gate.model}: only holders of the "
        f"'{RIGHT}' right of tier '{entry.tier}' may ({', '.join(sorted(holders))})"
    )


def report(
    rt: TickPorts,
    incident_id: str,
    *,
    person: str,
    kind: str,
    reference: str,
    causal_link: str | None = None,
    affected_persons: str | None = None,
    harm: str | None = None,
    corrective_measures: str | None = None,
    channel: Channel = "cli",
    credential: str | None = None,
) -> Gate:
    """Record a report made to the authority (initial or complete) and stop the reminders."""
    gate = get(rt, incident_id)
    if gate.status != "pending":
        raise UsageError(f"incident {gate.id} is closed ({gate.status}); open a new one")
    _holder(rt, gate, person, "report", channel)
    if kind not in rules.ReportKind.__args__:  # type: ignore[attr-defined]
        raise UsageError("--kind: initial or complete (Art. 73(5))")
    if not reference.strip():
        raise UsageError("--reference: the authority's reference (or how and where you reported)")
    facts = {
        "causal_link": causal_link,
        "affected_persons": affected_persons,
        "harm": harm,
        "corrective_measures": corrective_measures,
    }
    if causal_link is not None and causal_link not in rules.CausalLink.__args__:  # type: ignore[attr-defined]
        raise UsageError("--causal-link: " + ", ".join(rules.CausalLink.__args__))  # type: ignore[attr-defined]
    rt.store.record_event(
        "incident.reported",
        "gate",
        gate.id,
        gate.model,
        {
            "person": person,
            "kind": kind,
            "reference": reference,
            "channel": channel,
            "credential": credential,
            "at": rt.clock.now().isoformat(),
            "facts": {k: v for k, v in facts.items() if v is not None},
        },
    )
    chain = chain_of(rt, gate)
    if chain is not None and chain.status == "active":
        rt.store.acknowledge_escalation(chain.id, person)
    return gate


def close(
    rt: TickPorts,
    incident_id: str,
    *,
    person: str,
    reason: str,
    dismiss: bool = False,
    channel: Channel = "cli",
    credential: str | None = None,
) -> Gate:
    """Close the incident (reported and investigated), or dismiss it as not serious."""
    get(rt, incident_id)
    return decisions.decide(
        rt,
        incident_id,
        person=person,
        decision="reject" if dismiss else "approve",
        channel=channel,
        reason=reason,
        credential=credential,
    )


# --------------------------------------------------------------------------- reading


def _events(rt: EvidencePorts, gate: Gate, kind: str) -> list[dict[str, Any]]:
    return [
        dict(e.payload)
        for e in rt.store.events()
        if e.subject_id == gate.id and e.kind == kind and e.subject_type == "gate"
    ]


def _reports(rt: EvidencePorts, gate: Gate) -> list[dict[str, Any]]:
    return _events(rt, gate, "incident.reported")


def reported(rt: EvidencePorts, gate: Gate) -> bool:
    """Whether a report was recorded: ``incident report`` is what acknowledges its chain."""
    chain = chain_of(rt, gate)
    return chain is not None and chain.acknowledged_at is not None


def status_of(gate: Gate, chain: Escalation | None) -> str:
    if gate.status == "approved":
        return "closed"
    if gate.status == "rejected":
        return "dismissed"
    return "reported" if chain is not None and chain.acknowledged_at else "open"


def view(rt: EvidencePorts, gate: Gate, chains: list[Escalation] | None = None) -> IncidentView:
    found = [e for e in (chains or rt.store.list_escalations()) if e.gate_id == gate.id]
    chain = found[-1] if found else None
    deadline = datetime.fromisoformat(str(gate.context["deadline"]))
    reported = chain.acknowledged_at if chain else None
    return IncidentView(
        id=gate.id,
        model=gate.model,
        model_version=gate.model_version,
        case=str(gate.context["case"]),
        clause=f"{gate.context['definition']}, {gate.context['deadline_clause']}",
        summary=str(gate.context.get("summary", "")),
        status=status_of(gate, chain),
        aware_at=datetime.fromisoformat(str(gate.context["aware_at"])),
        deadline=deadline,
        reported_at=reported,
        reported_by=chain.acknowledged_by if chain else None,
        overdue=_overdue(reported, deadline, rt.clock.now()),
        closed_at=gate.decided_at,
    )


def _overdue(reported: datetime | None, deadline: datetime, now: datetime) -> bool:
    """Reported after the deadline, or not reported and the deadline has passed."""
    return (reported or now) > deadline


def list_incidents(rt: EvidencePorts, model: str | None = None) -> list[IncidentView]:
    gates = [g for g in rt.store.list_gates(model=model) if g.kind == KIND]
    chains = rt.store.list_escalations()
    return sorted((view(rt, g, chains) for g in gates), key=lambda v: v.aware_at, reverse=True)


def unreported(rt: EvidencePorts, model: str) -> list[str]:
    """The model's open incidents not reported yet (Art. 73(6): do not change the system)."""
    return [v.id for v in list_incidents(rt, model) if v.status == "open"]


def facts(rt: TickPorts, incident_id: str) -> rules.IncidentFacts:
    """Everything the report draft says, from the evidence: the gate, its events, decisions."""
    gate = get(rt, incident_id)
    entry = rt.config.model(gate.model)
    context = gate.context
    merged: dict[str, Any] = {
        k: context.get(k) for k in ("causal_link", "affected_persons", "harm")
    }
    reports = []
    for event in _reports(rt, gate):
        merged |= {k: v for k, v in dict(event.get("facts") or {}).items() if v is not None}
        reports.append(
            {
                "kind": str(event.get("kind", "")),
                "at": str(event.get("at", "")),
                "by": str(event.get("person", "")),
                "reference": str(event.get("reference", "")),
            }
        )
    aware = datetime.fromisoformat(str(context["aware_at"]))
    changes = [
        f"{a.action} of version {a.model_version} ({a.status}"
        + (f", {a.applied_at:%Y-%m-%d %H:%M UTC}" if a.applied_at else "")
        + f") requested by {a.requested_by}"
        for a in rt.store.list_actions(model=gate.model)
        if (a.applied_at or a.created_at) >= aware
    ]
    closed = None
    if gate.status != "pending":
        decided = rt.store.decisions_for(gate.id)
        last = decided[-1] if decided else None
        closed = {
            "by": last.person if last else "",
            "at": f"{gate.decided_at:%Y-%m-%d %H:%M UTC}" if gate.decided_at else "",
            "reason": (last.reason if last else "")
            + (" (dismissed: not a serious incident)" if gate.status == "rejected" else ""),
        }
    owner = entry.owners.operating_risk
    person = rt.config.inventory.people.get(owner) if owner else None
    occurred = context.get("occurred_at")
    return rules.IncidentFacts(
        incident_id=gate.id,
        status=status_of(gate, chain_of(rt, gate)),
        case=context["case"],
        summary=str(context["summary"]),
        provider=rt.settings.organisation,
        system=gate.model,
        system_description=entry.description,
        intended_purpose=entry.use_case.purpose if entry.use_case else "",
        model_version=gate.model_version,
        risk_tier=entry.tier,
        occurred_at=datetime.fromisoformat(str(occurred)) if occurred else None,
        aware_at=aware,
        deadline=datetime.fromisoformat(str(context["deadline"])),
        opened_by=gate.requested_by or "",
        opened_at=gate.opened_at,
        causal_link=merged.get("causal_link") or "under-investigation",
        affected_persons=merged.get("affected_persons"),
        member_states=list(context.get("member_states") or []),
        harm=merged.get("harm"),
        corrective_measures=merged.get("corrective_measures"),
        reports=reports,
        system_changes=changes,
        contact=f"{person.name} <{person.email}>" if person and person.email else None,
        closed=closed,
    )
