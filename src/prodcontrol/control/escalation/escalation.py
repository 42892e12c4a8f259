"""Escalation chains: start them for new findings, advance overdue ones, stop on acknowledge.

One chain per decision, not per finding: the findings a gate covers share its chain, and a run
whose findings open no gate (a notify-only tier) gets one chain for all of them
(:mod:`prodcontrol.control.runs.finding_groups`). Each step sends one message per recipient listing
every open finding of the chain, worst first. A chain is keyed by its worst finding (the gate's
``finding_id``), so a tick that finds a group without any chain (the runner crashed after
recording the run) starts exactly one.

The timing is pure (:mod:`prodcontrol.engine.escalation`); this module reads the store and the
catalog, builds the messages (:mod:`prodcontrol.control.escalation.messages`) and writes each step
together with its outbox rows in one store call, so a notification exists if and only if its step
does. The sender (:mod:`prodcontrol.control.escalation.outbox`) delivers them.

Entry points: :func:`after_run` (the check runner, once a run's findings are recorded),
:func:`tick` (the escalation ticker: a Prefect flow every minute, or ``prodcontrol escalations
tick``), :func:`acknowledge` (CLI and Slack) and :func:`gate_decided` (Slack endpoint; the
ticker also catches gates decided elsewhere).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prodcontrol.catalog.schema import EscalationPolicy, ModelEntry, ValueControl
from prodcontrol.catalog.types import OWNER_ROLES
from prodcontrol.control.escalation.email_fallback import queue_email_fallback
from prodcontrol.control.escalation.messages import (
    Button,
    ControlFacts,
    MessageFacts,
    decided_blocks,
    escalation_message,
)
from prodcontrol.control.gates import events
from prodcontrol.control.gates.events import GATE_CLOSED, Handled, Subscriber
from prodcontrol.control.ports import TickPorts
from prodcontrol.control.runs import finding_groups as groups
from prodcontrol.control.runs.anchoring import anchor_if_due
from prodcontrol.engine import escalation as timing
from prodcontrol.engine import gates as gate_rules
from prodcontrol.engine import value
from prodcontrol.errors import DecisionRefused, StoreConflict, UsageError
from prodcontrol.evidence.port import FirstStep
from prodcontrol.evidence.records import (
    ControlRun,
    Decision,
    DecisionValue,
    DomainEvent,
    Escalation,
    EscalationIn,
    EscalationStatus,
    Finding,
    Gate,
    Notification,
    NotificationIn,
    Verdict,
)

OPEN_STATUSES: tuple[EscalationStatus, ...] = ("active", "acknowledged")


@dataclass
class TickResult:
    """What one tick did."""

    started: int = 0
    advanced: int = 0
    reminders: int = 0
    dead_moved: int = 0
    resolved: int = 0
    updates: int = 0
    actions: int = 0
    events: int = 0
    emailed: int = 0
    breaches: dict[str, int] = field(default_factory=lambda: {"acknowledge": 0, "decide": 0})

    def as_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "advanced": self.advanced,
            "reminders": self.reminders,
            "dead_moved": self.dead_moved,
            "resolved": self.resolved,
            "updates": self.updates,
            "actions": self.actions,
            "events": self.events,
            "emailed_while_slack_down": self.emailed,
            "acknowledge_sla_breached": self.breaches["acknowledge"],
            "decide_sla_breached": self.breaches["decide"],
        }


# --------------------------------------------------------------------------- starting


def after_run(rt: TickPorts, run_id: str) -> None:
    """Start the one chain for a run's open findings (its gate's chain, if a gate covers them).

    Idempotent: a run (or gate) that already has its chain gets none more.
    """
    run = rt.store.get_run(run_id)
    findings = rt.store.list_findings(model=run.model, status="open")
    gates = rt.store.list_gates(model=run.model)
    _start_missing(rt, findings, gates, runs={run_id})


def _start_missing(
    rt: TickPorts,
    findings: list[Finding],
    gates: list[Gate],
    runs: set[str] | None = None,
) -> int:
    """Start a chain for every group of open findings that has none: one per gate, else per run."""
    wanted = [
        (gate, members)
        for gate, members in groups.chain_groups(findings, gates).values()
        if runs is None or any(m.run_id in runs for m in members)
    ]
    if not wanted:
        return 0
    ids = {i for gate, members in wanted for i in _chain_ids(gate, members)}
    keyed = {e.finding_id for e in rt.store.escalations_for_findings(sorted(ids))}
    started = 0
    for gate, members in wanted:
        if keyed & _chain_ids(gate, members) or _run_has_chain(rt, members):
            continue
        if _start(rt, gate, members) is not None:
            started += 1
    return started


def _chain_ids(gate: Gate | None, members: list[Finding]) -> set[str]:
    """The finding ids a group's chain may be keyed by: its members and its gate's findings."""
    return {m.id for m in members} | set(groups.listed(gate) if gate else [])


def _run_has_chain(rt: TickPorts, members: list[Finding]) -> bool:
    """Whether a finding of the group's runs no longer open (waived, closed) keys a chain."""
    runs, ids = {m.run_id for m in members}, {m.id for m in members}
    others = [
        f.id
        for f in rt.store.list_findings(model=members[0].model)
        if f.run_id in runs and f.id not in ids
    ]
    return bool(others) and bool(rt.store.escalations_for_findings(others))


def start_for_finding(
    rt: TickPorts, finding: Finding, gate: Gate | None, verdict: Verdict | None = None
) -> Escalation | None:
    """Start the chain of the finding's group (its gate's, else its run's open findings).

    Returns the chain already running for the group if there is one; ``None`` when the model
    left the inventory. ``verdict`` is read from the store and kept only for compatibility.
    """
    del verdict
    findings = rt.store.list_findings(model=finding.model, status="open")
    gates = rt.store.list_gates(model=finding.model)
    if finding.id not in {f.id for f in findings}:
        findings.append(finding)
    for covering, members in groups.chain_groups(findings, gates).values():
        if finding.id not in {m.id for m in members}:
            continue
        group_gate = covering or gate
        running = rt.store.escalations_for_findings(sorted(_chain_ids(group_gate, members)))
        if running:
            return running[-1]
        return _start(rt, group_gate, members)
    return None  # pragma: no cover - every finding is in a group


def _start(rt: TickPorts, gate: Gate | None, members: list[Finding]) -> Escalation | None:
    """Write the chain's first step with its messages; ``None`` when the model left.

    Two tickers racing to start the same chain: the store's unique key on the lead finding
    refuses the second, which then returns the first's chain.
    """
    step = _first_step(rt, gate, members, _Cache(rt))
    if step is None:
        return None
    try:
        return rt.store.start_escalation(step.escalation, step.notifications)
    except StoreConflict:
        running = rt.store.escalations_for_findings([str(step.escalation.finding_id)])
        if not running:
            raise
        return running[-1]


def first_step(
    rt: TickPorts,
    run: ControlRun,
    verdicts: Sequence[Verdict],
    findings: Sequence[Finding],
    gate: Gate | None,
) -> FirstStep | None:
    """The first step of a just-recorded run's chain, built inside the run's transaction.

    The chain covers the run's open findings (and, when the run joined an earlier run's gate,
    that gate's lead finding); with a pending gate its step-0 messages carry the Approve and
    Reject buttons for each recipient who holds the gate's right. Reads nothing the
    transaction has not written yet: the run, its verdicts and findings come in.
    """
    members = groups.worst_first(f for f in findings if f.status == "open")
    if not members:
        return None
    cache = _Cache(rt)
    cache.seed(run, verdicts, findings)
    if gate is not None and gate.finding_id and gate.finding_id not in {m.id for m in members}:
        members = [rt.store.get_finding(gate.finding_id), *members]
    return _first_step(rt, gate, members, cache)


def _first_step(
    rt: TickPorts, gate: Gate | None, members: list[Finding], cache: _Cache
) -> FirstStep | None:
    lead = _lead(rt, gate, members)
    try:
        model = rt.config.model(lead.model)
    except UsageError:
        return None
    policy = _policy(rt, model, cache.run_findings(lead))
    advance = timing.start(policy, rt.clock.now())
    chain = _Chain(rt, model, policy, lead=lead, members=members, gate=gate, cache=cache)
    messages = chain.notifications(advance.positions, upto=advance.step)
    record = EscalationIn(
        finding_id=lead.id,
        gate_id=gate.id if gate else None,
        model=lead.model,
        tier=model.tier,
        step=advance.step,
        next_due_at=advance.next_due_at,
    )
    return FirstStep(escalation=record, notifications=messages)


def _lead(rt: TickPorts, gate: Gate | None, members: list[Finding]) -> Finding:
    """The finding a chain is keyed by: its gate's (worst) finding, else the run's worst."""
    if gate is not None and gate.finding_id:
        found = next((m for m in members if m.id == gate.finding_id), None)
        return found or rt.store.get_finding(gate.finding_id)
    return members[0]


def _policy(rt: TickPorts, model: ModelEntry, findings: list[Finding]) -> EscalationPolicy:
    """The tier's chain, with the business-outcome owner first if any finding is a value control.

    Computed from every finding of the chain's run (any status), so it does not change while
    the chain runs.
    """
    catalog = rt.config.catalog.controls
    controls = [catalog.get(f.control_id) for f in groups.worst_first(findings)]
    valued = next((c for c in controls if isinstance(c, ValueControl)), None)
    chosen = valued if valued is not None else (controls[0] if controls else None)
    return value.escalation_policy(rt.config.tier(model).escalation, chosen)


class _Cache:
    """Store reads shared by the chains of one call (findings per model, verdicts per run)."""

    def __init__(self, rt: TickPorts) -> None:
        self.rt = rt
        self._findings: dict[str, list[Finding]] = {}
        self._verdicts: dict[str, dict[str, Verdict]] = {}
        self._runs: dict[str, ControlRun] = {}

    def seed(
        self, run: ControlRun, verdicts: Sequence[Verdict], findings: Sequence[Finding]
    ) -> None:
        """Start from a run being written (inside its transaction, not readable elsewhere)."""
        self._runs[run.id] = run
        self._verdicts[run.id] = {v.id: v for v in verdicts}
        self._findings[run.model] = list(findings)

    def run_findings(self, finding: Finding) -> list[Finding]:
        if finding.model not in self._findings:
            self._findings[finding.model] = self.rt.store.list_findings(model=finding.model)
        found = [f for f in self._findings[finding.model] if f.run_id == finding.run_id]
        return found or [finding]

    def verdict(self, finding: Finding) -> Verdict | None:
        if finding.run_id not in self._verdicts:
            found = self.rt.store.verdicts_for(finding.run_id)
            self._verdicts[finding.run_id] = {v.id: v for v in found}
        return self._verdicts[finding.run_id].get(finding.verdict_id)

    def run(self, run_id: str) -> ControlRun:
        if run_id not in self._runs:
            self._runs[run_id] = self.rt.store.get_run(run_id)
        return self._runs[run_id]


# --------------------------------------------------------------------------- the chain


def recipients(
    rt: TickPorts, model: ModelEntry, policy: EscalationPolicy, position: int
) -> list[tuple[str, str]]:
    """Who a chain position reaches, as ``(kind, id)`` pairs: people by id, channels by name."""
    found: list[tuple[str, str]] = []
    for target in timing.target_of(policy, position):
        if target.kind == "channel":
            found.append(("channel", target.name))
        elif target.name in OWNER_ROLES:
            person = model.owners.assigned().get(target.name)
            if person:
                found.append(("person", person))
        else:
            people = rt.config.inventory.people.values()
            found.extend(("person", p.id) for p in people if target.name in p.roles)
    return found


class _Chain:
    """Who a chain position reaches, and the one message each recipient gets per step."""

    def __init__(
        self,
        rt: TickPorts,
        model: ModelEntry,
        policy: EscalationPolicy,
        *,
        lead: Finding,
        members: list[Finding],
        gate: Gate | None,
        cache: _Cache,
    ) -> None:
        self.rt, self.model, self.policy = rt, model, policy
        self.lead, self.gate, self.cache = lead, gate, cache
        self.members = members or [lead]
        self._prior: dict[str, list[Decision]] = {}

    def recipients(self, position: int) -> list[tuple[str, str]]:
        """``(kind, id)`` pairs: people by id, channels by name."""
        return recipients(self.rt, self.model, self.policy, position)

    def notifications(self, positions: tuple[int, ...], upto: int) -> list[NotificationIn]:
        everyone: list[tuple[str, str]] = []
        for position in range(upto):
            everyone.extend(r for r in self.recipients(position) if r not in everyone)
        messages: list[NotificationIn] = []
        seen: set[tuple[str, str]] = set()
        for position in positions:
            for kind, recipient in self.recipients(position):
                if (kind, recipient) in seen:
                    continue
                seen.add((kind, recipient))
                told = [self._name(k, r) for k, r in everyone if (k, r) != (kind, recipient)]
                messages.append(self._message(position, kind, recipient, told))
        return messages

    def _name(self, kind: str, recipient: str) -> str:
        if kind == "channel":
            return recipient
        person = self.rt.config.inventory.people.get(recipient)
        return person.name if person else recipient

    def _message(self, position: int, kind: str, recipient: str, told: list[str]) -> NotificationIn:
        facts = self.facts(told, reminder=timing.is_reminder(self.policy, position))
        text, blocks = escalation_message(facts, self.buttons(kind, recipient))
        return NotificationIn(
            idempotency_key=f"esc:{self.lead.id}:{position}:{kind}:{recipient}",
            recipient_kind="person" if kind == "person" else "channel",
            recipient=recipient,
            payload={
                "kind": "escalation",
                "model": self.lead.model,
                "position": position,
                "evidence_url": facts.evidence_url,
                "text": text,
                "blocks": blocks,
                "findings": [m.id for m in self.members],
                "controls": [m.control_id for m in self.members],
            },
            finding_id=self.lead.id,
            gate_id=self.gate.id if self.gate else None,
        )

    def buttons(self, kind: str, recipient: str) -> list[Button]:
        if kind == "channel":
            return ["acknowledge"]
        config = self.rt.config
        buttons: list[Button] = []
        gate = self.gate
        if gate is not None and gate.status == "pending":
            buttons += [b for b in ("approve", "reject") if recipient in self._could(gate, b)]
        buttons.append("acknowledge")
        if recipient in config.holders_of(self.model, "exception"):
            buttons.append("request_waiver")
        return buttons

    def _could(self, gate: Gate, decision: DecisionValue) -> list[str]:
        """Who may still take ``decision``: the right's holders, less those who decided and,
        for approval under separation of duties, less the requester."""
        if gate.id not in self._prior:
            # a gate at version 1 has no decisions yet (and may not be committed yet)
            fresh = gate.version == 1
            self._prior[gate.id] = [] if fresh else self.rt.store.decisions_for(gate.id)
        holders = self.rt.config.holders_of(self.model, gate.right)  # type: ignore[arg-type]
        sod = self.rt.config.tier(self.model).gate.separation_of_duties
        return gate_rules.could_decide(gate, decision, holders, self._prior[gate.id], sod)

    def control_facts(self, finding: Finding) -> ControlFacts:
        verdict = self.cache.verdict(finding)
        control = self.rt.config.catalog.controls.get(finding.control_id)
        return ControlFacts(
            control_id=finding.control_id,
            control_title=control.title if control else "",
            verdict=finding.verdict,
            value=verdict.value if verdict else None,
            warn=verdict.warn if verdict else None,
            fail=verdict.fail if verdict else None,
            direction=verdict.direction if verdict else "higher_is_worse",
            unit=control.thresholds.unit if control else "",
            reason=verdict.reason if verdict else "",
            finding_id=finding.id,
        )

    def facts(self, told: list[str], reminder: bool) -> MessageFacts:
        settings = self.rt.settings
        worst = self.members[0]
        verdict = self.cache.verdict(worst)
        listed = [self.control_facts(m) for m in self.members]
        top = listed[0]
        run = self.cache.run(worst.run_id)
        prefect = None
        if settings.prefect_ui_url and run.flow_run_id:
            prefect = f"{settings.prefect_ui_url.rstrip('/')}/runs/flow-run/{run.flow_run_id}"
        return MessageFacts(
            model=worst.model,
            model_version=worst.model_version,
            tier=self.model.tier,
            stage=self.model.stage,
            control_id=top.control_id,
            control_title=top.control_title,
            verdict=top.verdict,
            value=top.value,
            warn=top.warn,
            fail=top.fail,
            direction=top.direction,
            unit=top.unit,
            reason=verdict.reason if verdict else "",
            since=min(m.opened_at for m in self.members),
            told=told,
            evidence_url=f"{settings.web_base_url.rstrip('/')}/runs/{worst.run_id}",
            prefect_url=prefect,
            finding_id=self.lead.id,
            gate_id=self.gate.id if self.gate else None,
            reminder=reminder,
            controls=listed if len(listed) > 1 else [],
        )


class _Groups:
    """The open findings of one tick, grouped by chain, and how to find an escalation's group."""

    def __init__(self, rt: TickPorts, findings: list[Finding], gates: list[Gate]) -> None:
        self.rt, self.gates = rt, gates
        self.by_key = groups.chain_groups(findings, gates)
        self.key_of = {m.id: key for key, (_, ms) in self.by_key.items() for m in ms}
        self.gate_of_finding = groups.gates_by_finding(gates, findings)
        self.cache = _Cache(rt)

    def gate_for(self, escalation: Escalation) -> Gate | None:
        if escalation.gate_id is not None:
            return self.rt.store.get_gate(escalation.gate_id)
        lead_id = escalation.finding_id or ""
        if lead_id in self.gate_of_finding:
            return self.gate_of_finding[lead_id]
        key = self.key_of.get(lead_id)
        if key is not None:
            return self.by_key[key][0]
        if not lead_id:
            return None
        lead = self.rt.store.get_finding(lead_id)
        return groups.gates_by_finding(self.gates, [lead]).get(lead_id)

    def members(self, escalation: Escalation, gate: Gate | None) -> list[Finding]:
        """The chain's findings still open, worst first; empty when none is."""
        lead_id = escalation.finding_id or ""
        key = self.key_of.get(lead_id)
        if key is None and gate is not None:
            key = f"gate:{gate.id}" if f"gate:{gate.id}" in self.by_key else None
        if key is None and lead_id:
            key = f"run:{self.rt.store.get_finding(lead_id).run_id}"
        return list(self.by_key.get(key or "", (None, []))[1])


def _chain_for(
    rt: TickPorts, escalation: Escalation, found: _Groups, gate: Gate | None
) -> _Chain | None:
    if escalation.finding_id is None:
        return None
    try:
        model = rt.config.model(escalation.model)
    except UsageError:
        return None
    lead = rt.store.get_finding(escalation.finding_id)
    members = found.members(escalation, gate) or [lead]
    policy = _policy(rt, model, found.cache.run_findings(lead))
    return _Chain(rt, model, policy, lead=lead, members=members, gate=gate, cache=found.cache)


# --------------------------------------------------------------------------- the ticker


def tick(rt: TickPorts) -> TickResult:
    """Advance overdue chains, send reminders, move past dead letters, close what was decided.

    Safe to run from several places at once: each change is a compare-and-set in the store, and a
    chain someone else moved first is skipped (StoreConflict) until the next tick.
    """
    from prodcontrol.control.gates import actions

    result = TickResult()
    now = rt.clock.now()
    result.actions = len(actions.apply_requested(rt))
    result.events = events.dispatch(rt.store, rt.subscribers, rt.clock).handled
    findings = rt.store.list_findings(status="open")
    gates = rt.store.list_gates()
    result.started = _start_missing(rt, findings, gates)
    found = _Groups(rt, findings, gates)
    dead = _dead_positions(rt)
    open_ones = [e for status in OPEN_STATUSES for e in rt.store.list_escalations(status=status)]
    for escalation in sorted(open_ones, key=lambda e: (e.started_at, e.id)):
        gate = found.gate_for(escalation)
        if gate is not None and gate.status != "pending":
            result.updates += gate_decided(rt, gate.id)
            if rt.store.get_escalation(escalation.id).status != "resolved":
                # a chain keyed by a finding its gate does not list (run-level, before the gate)
                rt.store.resolve_escalation(escalation.id, f"gate {gate.id} {gate.status}")
            result.resolved += 1
            continue
        if gate is not None and gate.kind == "incident":
            from prodcontrol.control.lifecycle import incidents

            incidents.tick_one(rt, escalation, gate, now, result)
            continue
        if escalation.finding_id and not found.members(escalation, gate):
            rt.store.resolve_escalation(escalation.id, "finding no longer open")
            result.resolved += 1
            continue
        if escalation.status == "active":
            _advance_one(
                rt,
                escalation,
                _chain_for(rt, escalation, found, gate),
                dead=dead.get(escalation.id, set()),
                now=now,
                result=result,
            )
        _count_breaches(rt, escalation, gate, now, result)
    result.emailed = queue_email_fallback(rt, now)
    anchor_if_due(rt)
    return result


def _advance_one(
    rt: TickPorts,
    escalation: Escalation,
    chain: _Chain | None,
    *,
    dead: set[int],
    now: datetime,
    result: TickResult,
) -> None:
    if chain is None:
        return
    started = escalation.started_at
    batch = timing.current_batch(chain.policy, started, escalation.step)
    moved_by_dead = bool(dead & set(batch))
    due = escalation.next_due_at is not None and escalation.next_due_at <= now
    if not (due or moved_by_dead):
        return
    advance = timing.plan(chain.policy, started, escalation.step, now, force=moved_by_dead)
    if advance is None:
        return
    messages = chain.notifications(advance.positions, upto=advance.step)
    try:
        rt.store.advance_escalation(escalation.id, advance.step, advance.next_due_at, messages)
    except StoreConflict:
        return  # acknowledged or advanced by someone else meanwhile
    result.advanced += 1
    result.dead_moved += int(moved_by_dead)
    result.reminders += int(any(timing.is_reminder(chain.policy, p) for p in advance.positions))


def _dead_positions(rt: TickPorts) -> dict[str, set[int]]:
    found: dict[str, set[int]] = defaultdict(set)
    for note in rt.store.list_notifications(status="dead"):
        position = note.payload.get("position")
        if (
            note.escalation_id
            and note.payload.get("kind") == "escalation"
            and isinstance(position, int)
        ):
            found[note.escalation_id].add(position)
    return found


def _count_breaches(
    rt: TickPorts, escalation: Escalation, gate: Gate | None, now: datetime, result: TickResult
) -> None:
    try:
        policy = rt.config.tier(rt.config.model(escalation.model)).escalation
    except UsageError:
        return
    for breach in timing.breaches(
        policy,
        escalation.started_at,
        now,
        acknowledged_at=escalation.acknowledged_at,
        decided_at=gate.decided_at if gate else None,
    ):
        result.breaches[breach] += 1


# --------------------------------------------------------------------------- people acting


def acknowledge(rt: TickPorts, escalation_id: str, person: str, channel: str) -> Escalation:
    """Stop the chain (the gate stays pending). Only the model's owners and holders may."""
    escalation = rt.store.get_escalation(escalation_id)
    rt.config.person(person)  # UsageError for a person not in people.yaml
    if escalation.gate_id and rt.store.get_gate(escalation.gate_id).kind == "incident":
        raise DecisionRefused(
            f"escalation {escalation_id} chases the report of serious incident "
            f"{escalation.gate_id}; it stops when the report is made: prodcontrol incident "
            f"report {escalation.gate_id} --kind initial --reference REF"
        )
    allowed = may_acknowledge(rt, escalation.model)
    if person not in allowed:
        rt.store.record_event(
            "escalation.acknowledge_refused",
            "escalation",
            escalation_id,
            escalation.model,
            {"person": person, "channel": channel, "reason": "not an owner or decision holder"},
        )
        raise DecisionRefused(
            f"{person} may not acknowledge escalation {escalation_id} on {escalation.model}: "
            f"only its owners and decision holders may ({', '.join(sorted(allowed))})"
        )
    result = rt.store.acknowledge_escalation(escalation_id, person)
    rt.store.record_event(
        "escalation.acknowledged_via",
        "escalation",
        escalation_id,
        escalation.model,
        {"person": person, "channel": channel, "acknowledged_by": result.acknowledged_by},
    )
    return result


def may_acknowledge(rt: TickPorts, model_name: str) -> set[str]:
    model = rt.config.model(model_name)
    allowed = set(model.owners.assigned().values())
    allowed |= rt.config.holders_of(model, "escalation_outcome")
    allowed |= rt.config.holders_of(model, "exception")
    return allowed


def escalation_for_finding(rt: TickPorts, finding_id: str) -> Escalation | None:
    """The chain a finding is on: its own, else its gate's or its run's (one chain per group)."""
    found = rt.store.escalations_for_findings([finding_id])
    if found:
        return found[-1]
    finding = rt.store.get_finding(finding_id)
    gate = groups.gates_by_finding(rt.store.list_gates(model=finding.model), [finding]).get(
        finding.id
    )
    ids = groups.listed(gate) if gate else []
    ids += [f.id for f in rt.store.list_findings(model=finding.model) if f.run_id == finding.run_id]
    found = rt.store.escalations_for_findings(sorted(set(ids)))
    return found[-1] if found else None


def gate_decided(rt: TickPorts, gate_id: str) -> int:
    """Close the gate's escalations and queue ``chat.update`` of every message sent about it.

    Returns how many updates were queued; calling it again queues none (idempotency keys).
    """
    gate = rt.store.get_gate(gate_id)
    if gate.status == "pending":
        return 0
    if gate.finding_id is not None:
        related = rt.store.escalations_for_findings(groups.listed(gate))
    else:
        related = [e for e in rt.store.list_escalations() if e.gate_id == gate.id]
    for escalation in related:
        if escalation.status != "resolved":
            rt.store.resolve_escalation(escalation.id, f"gate {gate.id} {gate.status}")
    line = decided_line(rt, gate)
    about = rt.store.notifications_about(finding_id=gate.finding_id, gate_id=gate.id)
    updates = [
        _update_for(note, gate, line)
        for note in about
        if note.status == "sent"
        and note.payload.get("op") != "update"
        and note.provider_ref.get("ts")
    ]
    before = {n.idempotency_key for n in about}
    rt.store.enqueue(updates)
    return sum(1 for u in updates if u.idempotency_key not in before)


def decided_line(rt: TickPorts, gate: Gate) -> str:
    decisions = rt.store.decisions_for(gate.id)
    names = []
    for decision in decisions:
        person = rt.config.inventory.people.get(decision.person)
        who = person.name if person else decision.person
        names.append(f"{decision.decision} by {who} via {decision.channel}")
    when = (gate.decided_at or rt.clock.now()).strftime("%Y-%m-%d %H:%M UTC")
    return f"Gate {gate.status} at {when}" + (f": {'; '.join(names)}" if names else "")


def _update_for(note: Notification, gate: Gate, line: str) -> NotificationIn:
    blocks = decided_blocks(list(note.payload.get("blocks") or []), line)
    return NotificationIn(
        idempotency_key=f"update:{note.id}:{gate.status}",
        recipient_kind=note.recipient_kind,
        recipient=note.recipient,
        payload={
            "op": "update",
            "model": note.payload.get("model"),
            "channel": note.provider_ref.get("channel"),
            "ts": note.provider_ref.get("ts"),
            "text": f"{note.payload.get('text', '')} | {line}",
            "blocks": blocks,
        },
        gate_id=gate.id,
        finding_id=note.finding_id,
        escalation_id=note.escalation_id,
    )


# --------------------------------------------------------------------------- subscribing


def gate_closed_subscriber(rt: TickPorts) -> Subscriber:
    """Stop a closed gate's escalations and update its Slack messages, whatever the channel
    that closed it (a subscriber to the gate's domain event, see :mod:`..gates.events`)."""

    def handle(event: DomainEvent) -> Handled:
        if event.gate_id is None:
            return Handled(note="no gate")
        queued = gate_decided(rt, event.gate_id)
        return Handled(note=f"{queued} message update(s) queued")

    return Subscriber("escalation", GATE_CLOSED, handle)
