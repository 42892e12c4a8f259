"""The gate state machine and who may decide: pure functions over pydantic records, no I/O.

A gate is ``pending`` until it closes, once: ``approved`` when enough distinct people holding
the gate's decision right approved it, ``rejected`` on the first rejection, ``expired`` when
its ``due_at`` passes first. The rules (DESIGN §1, §2):

- decision rights are held by role per tier; the caller resolves them to person ids
  (``Config.holders_of``) and passes them in as ``holders``;
- ``two_person`` gates need two *distinct* people holding the right; each person decides once;
- separation of duties: the person who requested a change never approves it. It always holds
  for change gates (promotion, retire, tier change, use case); on finding gates it holds when
  the tier's gate policy says ``separation_of_duties``;
- a closed gate, or one whose ``due_at`` has passed, takes no decision;
- on timeout the gate's ``on_timeout`` action applies (the tier's ``gate.on_timeout``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from prodcontrol.catalog.schema import TierPolicy
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.evidence.records import Decision, DecisionValue, Gate, GateIn, GateKind

RefusalCode = Literal[
    "closed",
    "timed_out",
    "unknown_person",
    "no_right",
    "separation_of_duties",
    "already_decided",
    "same_credential",
    "no_reason",
    "not_reported",
]
NewStatus = Literal["approved", "rejected"]

CHANGE_KINDS: frozenset[str] = frozenset({"promotion", "retire", "tier_change", "use_case"})
"""Gates that a person asked for: their requester never approves them, on any tier."""

LIFECYCLE_RIGHTS: dict[str, DecisionRight] = {
    "promotion": "deploy",
    "retire": "shutdown",
    "tier_change": "change",
    "use_case": "use_case",
    "review": "escalation_outcome",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Accepted(_Frozen):
    """The decision may be recorded; ``new_status`` closes the gate, ``None`` leaves it pending."""

    new_status: NewStatus | None
    approvals: int
    required: int


class Refusal(_Frozen):
    """Why the decision was refused, and who could take it instead."""

    code: RefusalCode
    message: str
    could_decide: list[str]


class Expiry(_Frozen):
    """A pending gate whose time ran out, and the action its timeout applies (``None``: none)."""

    gate_id: str
    action: str | None


# --------------------------------------------------------------------------- who decides


def approvers(prior: Iterable[Decision]) -> set[str]:
    return {d.person for d in prior if d.decision == "approve"}


def separation_applies(gate: Gate, separation_of_duties: bool) -> bool:
    """Whether the requester is barred from approving this gate."""
    return gate.requested_by is not None and (separation_of_duties or gate.kind in CHANGE_KINDS)


def could_decide(
    gate: Gate,
    decision: DecisionValue,
    holders: Collection[str],
    prior: Sequence[Decision],
    separation_of_duties: bool,
) -> list[str]:
    """The people who may still take ``decision`` on the gate, sorted."""
    decided = {d.person for d in prior}
    people = set(holders) - decided
    if decision == "approve" and separation_applies(gate, separation_of_duties):
        people.discard(gate.requested_by or "")
    return sorted(people)


def can_ever_close(
    gate: Gate, holders: Collection[str], prior: Sequence[Decision], separation_of_duties: bool
) -> bool:
    """Whether enough eligible people remain to approve the gate (else it can only be rejected)."""
    eligible = could_decide(gate, "approve", holders, prior, separation_of_duties)
    return len(approvers(prior)) + len(eligible) >= gate.required_approvals


def evaluate_decision(
    gate: Gate,
    *,
    person: str,
    decision: DecisionValue,
    holders: Collection[str],
    prior: Sequence[Decision],
    separation_of_duties: bool,
    now: datetime,
    known_person: bool = True,
) -> Accepted | Refusal:
    """Apply every rule to one person's decision; return what to record, or why not."""
    others = could_decide(gate, decision, holders, prior, separation_of_duties)
    who = _who(others)
    checks: list[tuple[bool, RefusalCode, str]] = [
        (
            gate.status != "pending",
            "closed",
            f"gate {gate.id} is already {gate.status}; a closed gate takes no decisions",
        ),
        (
            is_due(gate, now),
            "timed_out",
            f"gate {gate.id} timed out at {_at(gate.due_at)}; its timeout action "
            f"({gate.on_timeout or 'none'}) applies instead of a decision",
        ),
        (not known_person, "unknown_person", f"'{person}' is not in people.yaml; {who}"),
        (
            any(d.person == person for d in prior),
            "already_decided",
            f"{person} has already decided on gate {gate.id}; each person decides once "
            f"(a two-person gate needs a second, different person); {who}",
        ),
        (
            person not in holders,
            "no_right",
            f"{person} does not hold the '{gate.right}' decision right for {gate.model} "
            f"(rights are held by role per tier, see tiers.yaml decision_rights); {who}",
        ),
        (
            decision == "approve"
            and person == gate.requested_by
            and separation_applies(gate, separation_of_duties),
            "separation_of_duties",
            f"separation of duties: {person} requested this {gate.kind} gate and may not "
            f"approve it; {who}",
        ),
    ]
    for failed, code, message in checks:
        if failed:
            closed = code in {"closed", "timed_out"}
            return Refusal(code=code, message=message, could_decide=[] if closed else others)
    if decision == "reject":
        return Accepted(
            new_status="rejected", approvals=len(approvers(prior)), required=gate.required_approvals
        )
    count = len(approvers(prior) | {person})
    status: NewStatus | None = "approved" if count >= gate.required_approvals else None
    return Accepted(new_status=status, approvals=count, required=gate.required_approvals)


def _who(people: Sequence[str]) -> str:
    if not people:
        return "nobody else holds the right for this gate; ask the catalog owner to assign it"
    return f"who could decide: {', '.join(people)}"


def _at(when: datetime | None) -> str:
    return when.isoformat(timespec="seconds") if when else "-"


# --------------------------------------------------------------------------- time and outcomes


def is_due(gate: Gate, now: datetime) -> bool:
    return gate.status == "pending" and gate.due_at is not None and now >= gate.due_at


def expiries(gates: Iterable[Gate], now: datetime) -> list[Expiry]:
    """The pending gates whose time ran out at ``now``, with the action each timeout applies."""
    return [Expiry(gate_id=g.id, action=g.on_timeout) for g in gates if is_due(g, now)]


def outcome_action(gate: Gate) -> str | None:
    """What a closed gate does: its ``on_approve``, ``on_reject`` or ``on_timeout`` action."""
    return {
        "approved": gate.on_approve,
        "rejected": gate.on_reject,
        "expired": gate.on_timeout,
    }.get(gate.status)


# --------------------------------------------------------------------------- opening gates


def finding_gate(
    tier: TierPolicy,
    *,
    model: str,
    model_version: str,
    finding_id: str,
    now: datetime,
    requested_by: str | None = None,
    flow_run_id: str | None = None,
    context: dict[str, object] | None = None,
) -> GateIn:
    """The gate a finding opens under the tier's gate policy (never for ``mode: none``)."""
    policy = tier.gate
    if policy.mode == "none":
        raise ValueError(f"tier '{tier.title}' has gate mode 'none': findings open no gate")
    return GateIn(
        finding_id=finding_id,
        model=model,
        model_version=model_version,
        kind="finding",
        right=policy.right,
        required_approvals=policy.required_approvals,
        requested_by=requested_by,
        due_at=now + policy.timeout,
        on_approve="accept",
        on_reject=policy.on_reject,
        on_timeout=policy.on_timeout,
        flow_run_id=flow_run_id,
        context=dict(context or {}),
    )


def lifecycle_gate(
    tier: TierPolicy,
    kind: GateKind,
    *,
    model: str,
    model_version: str,
    requested_by: str,
    now: datetime,
    on_approve: str,
    context: dict[str, object] | None = None,
) -> GateIn:
    """A gate for a change somebody asked for (promotion, retirement): at least one approver,
    two under a two-person tier; nothing happens on reject or timeout but the record."""
    return GateIn(
        model=model,
        model_version=model_version,
        kind=kind,
        right=LIFECYCLE_RIGHTS.get(kind, "change"),
        required_approvals=max(1, tier.gate.required_approvals),
        requested_by=requested_by,
        due_at=now + tier.escalation.decide_within,
        on_approve=on_approve,
        on_reject=None,
        on_timeout=None,
        context=dict(context or {}),
    )
