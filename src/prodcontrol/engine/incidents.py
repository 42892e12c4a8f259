"""Serious incidents (EU AI Act, Regulation (EU) 2024/1689, Art. 73), pure: which case of the
article applies, the reporting deadline it sets, the escalation chain that chases it, and the
facts the report must carry.

The cases, as the article words them (deadlines run from the date the provider or deployer
became aware of the serious incident; the report is due "immediately" in every case, these are
the latest dates):

==========================  =================================  ==========================
``--severity``              what happened                      report at the latest
==========================  =================================  ==========================
``death``                   the death of a person              10 days (Art. 73(4))
                            (Art. 3(49)(a))
``critical-infrastructure`` serious and irreversible           2 days (Art. 73(3))
                            disruption of the management or
                            operation of critical
                            infrastructure (Art. 3(49)(b))
``widespread-infringement`` a widespread infringement          2 days (Art. 73(3))
                            (Art. 3(61))
``health``                  serious harm to a person's health  15 days (Art. 73(2))
                            (Art. 3(49)(a))
``fundamental-rights``      infringement of obligations under  15 days (Art. 73(2))
                            Union law protecting fundamental
                            rights (Art. 3(49)(c))
``property-environment``    serious harm to property or the    15 days (Art. 73(2))
                            environment (Art. 3(49)(d))
==========================  =================================  ==========================

Art. 73(5): an initial, incomplete report may come first and a complete one later. Art. 73(6):
after reporting, the provider investigates without delay (risk assessment, corrective action)
and must not alter the AI system in a way that may affect the evaluation of the causes before
informing the authorities.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.schema import EscalationPolicy, EscalationStep
from prodcontrol.evidence.records import Escalation, Gate

IncidentCase = Literal[
    "death",
    "critical-infrastructure",
    "widespread-infringement",
    "health",
    "fundamental-rights",
    "property-environment",
]
CausalLink = Literal["established", "reasonably-likely", "suspected", "under-investigation"]
ReportKind = Literal["initial", "complete"]


CHASE_AFTER_DEADLINE = timedelta(days=30)
"""How long reminders go on after a missed deadline (the risk channel was alarmed at it)."""


class CaseRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    case: IncidentCase
    definition: str = Field(description="Art. 3 clause that defines this kind of incident")
    deadline_clause: str = Field(description="Art. 73 paragraph that sets the deadline")
    days: int
    what: str


RULES: dict[str, CaseRule] = {
    rule.case: rule
    for rule in (
        CaseRule(
            case="death",
            definition="Art. 3(49)(a)",
            deadline_clause="Art. 73(4)",
            days=10,
            what="the death of a person",
        ),
        CaseRule(
            case="critical-infrastructure",
            definition="Art. 3(49)(b)",
            deadline_clause="Art. 73(3)",
            days=2,
            what="a serious and irreversible disruption of the management or operation of "
            "critical infrastructure",
        ),
        CaseRule(
            case="widespread-infringement",
            definition="Art. 3(61)",
            deadline_clause="Art. 73(3)",
            days=2,
            what="a widespread infringement",
        ),
        CaseRule(
            case="health",
            definition="Art. 3(49)(a)",
            deadline_clause="Art. 73(2)",
            days=15,
            what="serious harm to a person's health",
        ),
        CaseRule(
            case="fundamental-rights",
            definition="Art. 3(49)(c)",
            deadline_clause="Art. 73(2)",
            days=15,
            what="an infringement of obligations under Union law intended to protect "
            "fundamental rights",
        ),
        CaseRule(
            case="property-environment",
            definition="Art. 3(49)(d)",
            deadline_clause="Art. 73(2)",
            days=15,
            what="serious harm to property or the environment",
        ),
    )
}


def rule_for(case: str) -> CaseRule:
    """The article's rule for ``case``; a ValueError naming the cases for anything else."""
    if case not in RULES:
        raise ValueError(f"unknown severity '{case}'; use one of: {', '.join(RULES)}")
    return RULES[case]


def reporting_deadline(case: str, aware_at: datetime) -> datetime:
    """The latest time the report may reach the market surveillance authority."""
    return aware_at + timedelta(days=rule_for(case).days)


def elapsed_share(aware_at: datetime, deadline: datetime, now: datetime) -> float:
    """How much of the reporting window has passed: 0 at awareness, 1.0 at the deadline."""
    window = (deadline - aware_at).total_seconds()
    if window <= 0:
        return 1.0
    return max(0.0, (now - aware_at).total_seconds() / window)


def escalation(
    tier_chain: EscalationPolicy, risk_channel: str, aware_at: datetime, now: datetime, case: str
) -> EscalationPolicy:
    """The chain that chases the report, its SLA timers set by the article's deadline.

    Everyone on the tier's chain and its risk channel are told at once (the report is due
    "immediately"), then reminded every ``repeat_every`` of the tier (at most daily, at least
    hourly) until the report is made, past the deadline too (a late report is still due at
    once), for at most :data:`CHASE_AFTER_DEADLINE` beyond it. ``acknowledge_within`` (the
    report's SLA) is the time left to the deadline from when the chain starts;
    ``decide_within`` (closing it) that plus :data:`CHASE_AFTER_DEADLINE`.
    """
    left = max(reporting_deadline(case, aware_at) - now, timedelta(minutes=1))
    targets: list[EscalationStep] = []
    for step in tier_chain.steps:
        first = step.model_copy(update={"after": timedelta(0)})
        if first not in targets:
            targets.append(first)
    channel = EscalationStep(after=timedelta(0), channel=risk_channel)
    if channel not in targets:
        targets.append(channel)
    every = tier_chain.repeat_every or timedelta(days=1)
    every = min(max(every, timedelta(hours=1)), timedelta(days=1))
    return EscalationPolicy(
        steps=targets,
        repeat_every=every,
        acknowledge_within=left,
        decide_within=left + CHASE_AFTER_DEADLINE,
    )


class IncidentFacts(BaseModel):
    """What the report draft says: the facts Art. 73 and the Commission's reporting template
    ask for. Unknown facts stay ``None`` and the draft says they are still to be given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    incident_id: str
    status: str
    case: IncidentCase
    summary: str
    provider: str | None = None
    deployer: str | None = None
    system: str
    system_description: str = ""
    intended_purpose: str = ""
    model_version: str
    risk_tier: str
    occurred_at: datetime | None = None
    aware_at: datetime
    deadline: datetime
    opened_by: str
    opened_at: datetime
    causal_link: CausalLink = "under-investigation"
    affected_persons: str | None = None
    member_states: list[str] = Field(default_factory=list)
    harm: str | None = None
    corrective_measures: str | None = None
    reports: list[dict[str, str]] = Field(default_factory=list)
    system_changes: list[str] = Field(default_factory=list)
    contact: str | None = None
    closed: dict[str, str] | None = None


def report_draft(facts: IncidentFacts) -> str:
    """The report draft as Markdown: one section per fact the authority asks for."""
    rule = rule_for(facts.case)

    def given(value: object) -> str:
        return str(value) if value not in (None, "", []) else "_to be given_"

    def day(value: datetime | None) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else "_to be given_"

    reports = "\n".join(
        f"- {r.get('kind', '')} report on {r.get('at', '')} by {r.get('by', '')}"
        + (f", authority reference {r['reference']}" if r.get("reference") else "")
        for r in facts.reports
    )
    changes = "\n".join(f"- {c}" for c in facts.system_changes) or "- none recorded"
    complete = any(r.get("kind") == "complete" for r in facts.reports)
    kind = "complete" if complete else "initial (Art. 73(5): it may be incomplete)"
    lines = [
        f"# Serious incident report (draft): {facts.system} — incident {facts.incident_id}",
        "",
        "Regulation (EU) 2024/1689 (AI Act), Article 73. Draft generated by prodcontrol from the "
        "evidence record; check every fact before submitting it to the market surveillance "
        "authority of the Member State where the incident occurred.",
        "",
        "## 1. Report",
        f"- Type of report: {kind}",
        f"- Status: {facts.status}",
        f"- Reporting deadline: {day(facts.deadline)} ({rule.deadline_clause}: {rule.days} days "
        "after awareness; report immediately after establishing a causal link or its "
        "reasonable likelihood)",
        f"- Reports submitted:\n{reports}" if reports else "- Reports submitted: none yet",
        "",
        "## 2. Provider and deployer",
        f"- Provider: {given(facts.provider)}",
        f"- Deployer: {given(facts.deployer)}",
        f"- Contact person: {given(facts.contact)}",
        "",
        "## 3. AI system",
        f"- System: {facts.system} (MLflow registered model)",
        f"- Version in service: {facts.model_version}",
        f"- Risk tier: {facts.risk_tier}",
        f"- Description: {given(facts.system_description)}",
        f"- Intended purpose: {given(facts.intended_purpose)}",
        "",
        "## 4. The incident",
        f"- Kind: {rule.what} ({rule.definition})",
        f"- Description: {facts.summary}",
        f"- Date and time it occurred: {day(facts.occurred_at)}",
        f"- Date and time the provider or deployer became aware: {day(facts.aware_at)}",
        f"- Member State(s) concerned: {given(', '.join(facts.member_states))}",
        f"- Affected persons (number, categories): {given(facts.affected_persons)}",
        f"- Harm or damage: {given(facts.harm)}",
        "",
        "## 5. Causal link",
        f"- Causal link between the AI system and the incident: {facts.causal_link}",
        "",
        "## 6. Corrective measures (Art. 73(6))",
        f"- Taken or planned: {given(facts.corrective_measures)}",
        "- Changes to the AI system since awareness (Art. 73(6): none that may affect the "
        "evaluation of the causes before the authorities are informed):",
        changes,
        "",
        "## 7. Record",
        f"- Opened by {facts.opened_by} on {day(facts.opened_at)}",
        (
            f"- Closed by {facts.closed.get('by', '')} on {facts.closed.get('at', '')}: "
            f"{facts.closed.get('reason', '')}"
            if facts.closed
            else "- Open"
        ),
    ]
    return "\n".join(lines) + "\n"


class IncidentRow(BaseModel):
    """One incident as the operating review counts it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    model: str
    case: str
    clause: str
    aware_at: datetime
    deadline: datetime
    reported_at: datetime | None
    closed_at: datetime | None
    outcome: Literal["reported in time", "reported late", "unreported, overdue", "open"]


def review_rows(
    incidents: list[tuple[Gate, Escalation | None]], start: datetime, end: datetime
) -> list[IncidentRow]:
    """The incidents a period's review shows: those the period became aware of, and those
    still unreported at its end; judged as of the period's end."""
    rows = []
    for gate, chain in incidents:
        context = gate.context
        aware = datetime.fromisoformat(str(context["aware_at"]))
        deadline = datetime.fromisoformat(str(context["deadline"]))
        reported = chain.acknowledged_at if chain is not None else None
        reported = reported if reported is not None and reported < end else None
        still_open = reported is None and (gate.decided_at is None or gate.decided_at >= end)
        if not (start <= aware < end or (aware < end and still_open)):
            continue
        if reported is not None:
            outcome = "reported in time" if reported <= deadline else "reported late"
        elif gate.status == "rejected" and gate.decided_at is not None and gate.decided_at < end:
            continue  # dismissed as not serious: nothing was due
        else:
            outcome = "unreported, overdue" if end > deadline else "open"
        rows.append(
            IncidentRow(
                id=gate.id,
                model=gate.model,
                case=str(context["case"]),
                clause=f"{context['definition']}, {context['deadline_clause']}",
                aware_at=aware,
                deadline=deadline,
                reported_at=reported,
                closed_at=gate.decided_at if gate.decided_at and gate.decided_at < end else None,
                outcome=outcome,
            )
        )
    return sorted(rows, key=lambda r: r.aware_at)
