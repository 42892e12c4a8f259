"""Periodic model review: a ``review`` gate on the tier's cadence, with the catalog's checklist.

When the ``review_due`` control's share of the tier's ``review_every`` reaches its warn (or fail)
threshold, :func:`open_due_reviews` opens a ``review`` gate whose context carries the checklist
from the control's params. Reviewers complete it through :func:`complete`, which checks every
checklist item was confirmed, records who reviewed what (the decision's reason plus a
``model_review_checklist`` event) and decides the gate through :func:`decisions.decide`, so rights
and the tier's two-person rule apply as on any gate. An approved review gate resets the clock:
:func:`last_review_date` is the later of ``last_review`` in models.yaml and the newest approved
review.
"""

from __future__ import annotations

from datetime import date, timedelta

from prodcontrol.catalog.schema import ModelEntry, ReviewDueControl
from prodcontrol.catalog.types import CONTROLLED_STAGES
from prodcontrol.control.gates import decisions
from prodcontrol.control.ports import GatePorts
from prodcontrol.engine import measures
from prodcontrol.engine.effectiveness import last_reviewed
from prodcontrol.engine.gates import LIFECYCLE_RIGHTS
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.evidence.records import Channel, Gate, GateIn

REVIEW_WINDOW = timedelta(days=30)
"""How long reviewers have to complete a review gate before it expires (and is opened again)."""


def _review_control(rt: GatePorts, entry: ModelEntry) -> ReviewDueControl | None:
    for control in rt.config.controls_for(entry):
        if isinstance(control, ReviewDueControl):
            return control
    return None


def checklist(rt: GatePorts, entry: ModelEntry) -> list[str]:
    control = _review_control(rt, entry)
    return list(control.params.checklist) if control else []


def last_review_date(rt: GatePorts, entry: ModelEntry) -> date | None:
    """The later of ``last_review`` in models.yaml and the newest approved review gate."""
    when = last_reviewed(entry, rt.store.list_gates(model=entry.name))
    return when.date() if when is not None else None


def _pending(rt: GatePorts, model: str) -> Gate | None:
    pending = [g for g in rt.store.list_gates(status="pending", model=model) if g.kind == "review"]
    return pending[-1] if pending else None


def open_review(rt: GatePorts, model: str, *, requested_by: str | None = None) -> Gate:
    """Open the model's review gate; an already pending one is returned, not doubled."""
    entry = rt.config.model(model)
    existing = _pending(rt, model)
    if existing is not None:
        return existing
    tier = rt.config.tier(entry)
    last = last_review_date(rt, entry)
    spec = GateIn(
        model=model,
        model_version="-",
        kind="review",
        right=LIFECYCLE_RIGHTS["review"],
        required_approvals=max(1, tier.gate.required_approvals),
        requested_by=requested_by,
        due_at=rt.clock.now() + REVIEW_WINDOW,
        context={
            "checklist": checklist(rt, entry),
            "last_review": last.isoformat() if last else None,
            "review_every_days": tier.review_every.days,
        },
    )
    return rt.store.open_gate(spec)


def open_due_reviews(rt: GatePorts) -> list[Gate]:
    """Open a review gate for each controlled model whose review is due by its tier's cadence."""
    now = rt.clock.now()
    opened = []
    for entry in rt.config.inventory.models.values():
        control = _review_control(rt, entry)
        if entry.stage not in CONTROLLED_STAGES or control is None:
            continue
        last = last_review_date(rt, entry)
        every = rt.config.tier(entry).review_every
        share = measures.review_elapsed(last, now, every) if last else float("inf")
        limit = control.thresholds.warn
        if share >= (limit if limit is not None else control.thresholds.fail):
            opened.append(open_review(rt, entry.name))
    return opened


def complete(
    rt: GatePorts,
    model: str,
    *,
    person: str,
    checked: list[str],
    notes: str = "",
    approve: bool = True,
    channel: Channel = "cli",
    credential: str | None = None,
) -> Gate:
    """Record ``person``'s review against the checklist and decide the pending review gate.

    Approving needs every checklist item confirmed; an item not on the checklist is refused so
    a typo cannot stand in for a real check. Rejecting (the model is not fit) needs notes.
    """
    gate = _pending(rt, model)
    if gate is None:
        raise UsageError(
            f"no pending review for '{model}'; open one: prodcontrol review open {model}"
        )
    items = [str(i) for i in gate.context.get("checklist", [])]
    unknown = [c for c in checked if c not in items]
    if unknown:
        raise UsageError(
            f"not on {model}'s review checklist: {', '.join(unknown)}; the checklist is: "
            + "; ".join(items)
        )
    missing = [i for i in items if i not in checked]
    if approve and missing:
        raise DecisionRefused(
            "a review is approved only when every checklist item was checked; missing: "
            + "; ".join(missing)
        )
    if not approve and not notes:
        raise UsageError("say why the model is not fit with --notes when rejecting a review")
    reason = "checked: " + "; ".join(checked) + (f"; notes: {notes}" if notes else "")
    decided = decisions.decide(
        rt,
        gate.id,
        person=person,
        decision="approve" if approve else "reject",
        channel=channel,
        reason=reason,
        credential=credential,
    )
    rt.store.record_event(
        "model_review_checklist",
        "gate",
        gate.id,
        model,
        {"person": person, "checked": checked, "missing": missing, "notes": notes},
    )
    return decided
