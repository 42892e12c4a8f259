"""Use-case approval at introduction: a model leaves experimentation only with an approved use case.

The model's ``use_case`` in models.yaml (purpose, expected value, data used, tier requested) is
put to the people holding two decision rights of the requested tier: ``use_case`` (approve the
use case) and ``funding``. Each right gets its own gate of kind ``use_case`` (the gate's
``right`` says which), decided through :func:`prodcontrol.control.gates.decisions.decide` like every
other gate, so rights, separation of duties (the requester never approves) and refusals are recorded
the same way. The use case is approved when the newest gate of each right is approved.

Rights are those of the model's tier in models.yaml (the same look-up the decision makes).
Required approvals per gate: the tier's gate rule (two under ``two_person``), capped at the
number of people who hold that right besides the requester, and at least one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from pydantic import BaseModel, ConfigDict

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.control.gates import decisions
from prodcontrol.control.ports import GatePorts
from prodcontrol.engine import gates as rules
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.evidence.records import Channel, DecisionValue, Gate, GateIn

RIGHTS: tuple[DecisionRight, DecisionRight] = ("use_case", "funding")
DECIDE_WITHIN = timedelta(days=14)
"""How long a use-case request stays open before it expires and must be asked for again."""
NO_VERSION = "-"
"""Use cases are approved before any version exists; their gates name no version."""


class UseCaseStatus(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    approved: bool
    gates: dict[str, str]
    """right -> status of the newest gate for it (``missing`` when never requested)."""


def _entry(rt: GatePorts, model: str) -> ModelEntry:
    entry = rt.config.model(model)
    if entry.use_case is None:
        raise UsageError(
            f"model '{model}' has no use_case in models.yaml; add purpose, expected_value "
            "(kpi, metric_key, target, review_date), data_used and tier_requested"
        )
    return entry


def holders(rt: GatePorts, entry: ModelEntry, right: str) -> set[str]:
    """People holding ``right`` on the model under its tier in models.yaml.

    The same look-up :func:`decisions.decide` makes; moving the model to the tier its use case
    requests is a change of its own (a ``tier_change`` gate)."""
    return rt.config.holders_of(entry, cast(DecisionRight, right))


def use_case_gates(rt: GatePorts, model: str) -> list[Gate]:
    return [g for g in rt.store.list_gates(model=model) if g.kind == "use_case"]


def request(rt: GatePorts, model: str, *, requested_by: str) -> list[Gate]:
    """Open one gate per right for the model's use case; pending ones are returned, not doubled."""
    entry = _entry(rt, model)
    rt.config.person(requested_by)
    if entry.stage != "experimentation":
        raise UsageError(
            f"model '{model}' is in {entry.stage}; use cases are approved while in experimentation"
        )
    use_case = entry.use_case
    if use_case is None:  # checked by _entry; keeps the type checker informed
        raise UsageError(f"model '{model}' has no use_case")
    tier = rt.config.tier(entry)
    pending = {g.right: g for g in use_case_gates(rt, model) if g.status == "pending"}
    now = rt.clock.now()
    opened = []
    for right in RIGHTS:
        if right in pending:
            opened.append(pending[right])
            continue
        eligible = holders(rt, entry, right) - {requested_by}
        if not eligible:
            raise UsageError(
                f"nobody but the requester holds the '{right}' right for tier "
                f"'{entry.tier}' on {model}; assign the owner roles in models.yaml "
                f"({', '.join(tier.decision_rights.roles_for(right))})"
            )
        required = max(1, min(tier.gate.required_approvals, len(eligible)))
        spec = GateIn(
            model=model,
            model_version=NO_VERSION,
            kind="use_case",
            right=right,
            required_approvals=required,
            requested_by=requested_by,
            due_at=now + DECIDE_WITHIN,
            context={
                "use_case": use_case.model_dump(mode="json"),
                "tier_requested": use_case.tier_requested,
                "stage": entry.stage,
            },
        )
        opened.append(rt.store.open_gate(spec))
    return opened


def decide(
    rt: GatePorts,
    model: str,
    *,
    person: str,
    decision: DecisionValue,
    channel: Channel = "cli",
    reason: str = "",
    conditions: list[str] | None = None,
    credential: str | None = None,
) -> list[Gate]:
    """Decide every pending use-case gate of ``model`` whose right ``person`` holds.

    A person who holds neither right is refused through :func:`decisions.decide` on the first
    pending gate, so the refusal is recorded as evidence like any other.
    """
    entry = _entry(rt, model)
    pending = [g for g in use_case_gates(rt, model) if g.status == "pending"]
    pending.sort(key=lambda g: RIGHTS.index(g.right) if g.right in RIGHTS else len(RIGHTS))
    if not pending:
        raise UsageError(
            f"no pending use-case approval for '{model}'; ask for one first: "
            f"prodcontrol usecase request {model} --as PERSON"
        )
    text = reason
    if conditions:
        text = (reason + "; " if reason else "") + "conditions: " + "; ".join(conditions)
    mine = [g for g in pending if person in holders(rt, entry, g.right)]
    decided = []
    for gate in mine or pending[:1]:
        decided.append(
            decisions.decide(
                rt,
                gate.id,
                person=person,
                decision=decision,
                channel=channel,
                reason=text,
                credential=credential,
            )
        )
    if conditions:
        rt.store.record_event(
            "use_case_conditions",
            "model",
            model,
            model,
            {"person": person, "conditions": conditions, "gates": [g.id for g in decided]},
        )
    return decided


def status(rt: GatePorts, model: str) -> UseCaseStatus:
    gates = use_case_gates(rt, model)
    newest: dict[str, str] = {right: "missing" for right in RIGHTS}
    for gate in gates:  # oldest first: the newest of each right wins
        newest[gate.right] = gate.status
    return UseCaseStatus(
        model=model,
        approved=all(newest[r] == "approved" for r in RIGHTS),
        gates=newest,
    )


def problem(rt: GatePorts, model: str) -> str | None:
    """Why ``model`` may not leave experimentation yet, or ``None`` when its use case is approved.

    For :func:`prodcontrol.control.lifecycle.lifecycle.request_promotion` (experimentation to
    pilot)."""
    found = status(rt, model)
    if found.approved:
        return None
    state = ", ".join(f"{right}: {s}" for right, s in found.gates.items())
    return (
        f"use case not approved ({state}); ask for it with prodcontrol usecase request "
        f"{model} --as PERSON, then the holders of the use_case and funding rights approve it"
    )


def require_approved(rt: GatePorts, model: str) -> None:
    """Refuse leaving experimentation without an approved use case (call before ``pilot``)."""
    why = problem(rt, model)
    if why is not None:
        raise DecisionRefused(f"model '{model}': {why}")


def request_tier_change(
    rt: GatePorts, model: str, to_tier: str, *, requested_by: str, reason: str
) -> Gate:
    """Open (or return the pending) gate for moving ``model`` to another risk tier.

    Decided like any gate (``prodcontrol gates approve``) by holders of the ``change`` right
    under the stricter of the two tiers' gate rules; the requester never approves it. The
    approved gate is the record; the tier in force is the one models.yaml declares, so the
    change is completed by editing the file (``prodcontrol validate`` then confirms it).
    """
    entry = rt.config.model(model)
    rt.config.person(requested_by)
    if to_tier not in rt.config.catalog.tiers:
        known = ", ".join(sorted(rt.config.catalog.tiers))
        raise UsageError(f"unknown tier '{to_tier}'; tiers in the catalog: {known}")
    if to_tier == entry.tier:
        raise UsageError(f"{model} is already in tier '{to_tier}'")
    if not reason.strip():
        raise UsageError("a tier change needs a reason (--reason)")
    for gate in rt.store.list_gates(status="pending", model=model):
        if gate.kind == "tier_change" and gate.context.get("to_tier") == to_tier:
            return gate
    tiers = (rt.config.tier(entry), rt.config.catalog.tiers[to_tier])
    stricter = max(tiers, key=lambda t: t.gate.required_approvals)
    spec = rules.lifecycle_gate(
        stricter,
        "tier_change",
        model=model,
        model_version=NO_VERSION,
        requested_by=requested_by,
        now=rt.clock.now(),
        on_approve="",
        context={"from_tier": entry.tier, "to_tier": to_tier, "reason": reason},
    )
    return rt.store.open_gate(spec.model_copy(update={"on_approve": None}))
