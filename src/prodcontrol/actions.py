"""What decisions do in the model registry: rollback, suspend, promote, retire, accept.

Each action is recorded in the evidence store (``record_action``) and shows on the MLflow model
version as ``prodcontrol.*`` tags, so MLflow users see it where they look. An action that a gate
set off is idempotent by gate id: applying it again returns the action already recorded and
touches nothing. An unreachable registry records a ``failed`` action and raises
:class:`~prodcontrol.errors.UnreachableError` (exit 3); a later ``reconcile`` retries it.

Tags serving code reads (MLflow 3 has no stages, only aliases and tags):

- ``prodcontrol.suspended=true``: the kill switch (EU AI Act Art. 14(4)(e)); serving must refuse
  a version carrying it, and the serving alias is removed as well;
- ``prodcontrol.approved=true``: the version passed its gate; rollback goes to the newest such
  version older than the one serving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.engine import gates as rules
from prodcontrol.errors import DecisionRefused, UnreachableError, UsageError
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    Gate,
    GateStatus,
    NotificationIn,
)
from prodcontrol.ports import ModelVersionRef
from prodcontrol.runtime import Runtime

TAG_APPROVED = "prodcontrol.approved"
TAG_APPROVED_AT = "prodcontrol.approved_at"
TAG_ACCEPTED = "prodcontrol.last_accepted_finding"
TAG_SUSPENDED = "prodcontrol.suspended"
TAG_ROLLED_BACK = "prodcontrol.rolled_back"
TAG_RETIRED = "prodcontrol.retired"
TAG_STAGE = "prodcontrol.stage"
TAG_LAST_ACTION = "prodcontrol.last_action"
TAG_LAST_ACTION_AT = "prodcontrol.last_action_at"
TAG_LAST_ACTION_GATE = "prodcontrol.last_action_gate"
TAG_LAST_ACTION_BY = "prodcontrol.last_action_by"
SYSTEM = "system"

DONE = ("applied", "skipped")


class Skip(Exception):
    """Nothing to change in the registry; the action is recorded as ``skipped`` with why."""

    def __init__(self, why: str, version: str | None = None) -> None:
        super().__init__(why)
        self.why, self.version = why, version


def is_suspended(version: ModelVersionRef) -> bool:
    """What serving code checks before it loads a version: the kill switch."""
    return version.tags.get(TAG_SUSPENDED) == "true"


def done_for_gate(rt: Runtime, gate: Gate) -> Action | None:
    """The action a gate already set off (applied or skipped), if any."""
    for action in reversed(rt.store.list_actions(gate.model)):
        if action.gate_id == gate.id and action.status in DONE:
            return action
    return None


# --------------------------------------------------------------------------- gate outcomes


def apply_gate_outcome(rt: Runtime, gate: Gate) -> Action | None:
    """Do what a closed gate says (approve/reject/timeout action); a second call is a no-op."""
    kind = rules.outcome_action(gate)
    if kind is None:
        return None
    existing = done_for_gate(rt, gate)
    if existing is not None:
        return existing
    by = _deciders(rt, gate)
    why = f"gate {gate.id} {gate.status}"
    appliers: dict[str, Callable[[], Action]] = {
        "accept": lambda: accept(rt, gate, by=by),
        "rollback": lambda: rollback(rt, gate.model, by=by, reason=why, gate=gate),
        "suspend": lambda: suspend(rt, gate.model, by=by, reason=why, gate=gate),
        "promote": lambda: promote(rt, gate),
        "retire": lambda: retire(rt, gate),
    }
    if kind not in appliers:
        raise UsageError(f"gate {gate.id} names an unknown action '{kind}'; fix the gate's policy")
    return appliers[kind]()


def _deciders(rt: Runtime, gate: Gate) -> str:
    if gate.status == "expired":
        return SYSTEM
    wanted = "approve" if gate.status == "approved" else "reject"
    people = [d.person for d in rt.store.decisions_for(gate.id) if d.decision == wanted]
    return ",".join(people) or SYSTEM


def reconcile(rt: Runtime) -> list[Action]:
    """Apply the outcome of every closed gate whose action is not done yet (after a crash)."""
    applied = []
    closed: tuple[GateStatus, ...] = ("approved", "rejected", "expired")
    for status in closed:
        for gate in rt.store.list_gates(status=status):
            if rules.outcome_action(gate) is None or done_for_gate(rt, gate) is not None:
                continue
            action = apply_gate_outcome(rt, gate)
            if action is not None:
                applied.append(action)
    return applied


# --------------------------------------------------------------------------- the actions


def _execute(
    rt: Runtime,
    kind: ActionKind,
    model: str,
    version: str,
    *,
    by: str,
    gate: Gate | None,
    params: dict[str, Any],
    change: Callable[[], dict[str, Any]],
) -> Action:
    """Run ``change`` against the registry and record what happened, whatever happened."""
    base = {
        "gate_id": gate.id if gate else None,
        "model": model,
        "action": kind,
        "params": params,
        "requested_by": by,
    }
    try:
        result = change()
    except Skip as skip:
        return rt.store.record_action(
            ActionIn(
                **base,
                model_version=skip.version or version,
                status="skipped",
                result={"why": skip.why},
            )
        )
    except UnreachableError as exc:
        rt.store.record_action(
            ActionIn(**base, model_version=version, status="failed", result={"error": str(exc)})
        )
        raise
    version = str(result.pop("model_version", version))
    return rt.store.record_action(
        ActionIn(
            **base,
            model_version=version,
            status="applied",
            result=result,
            applied_at=rt.clock.now(),
        )
    )


def _stamp(rt: Runtime, kind: str, by: str, gate: Gate | None) -> dict[str, str]:
    return {
        TAG_LAST_ACTION: kind,
        TAG_LAST_ACTION_AT: rt.clock.now().isoformat(timespec="seconds"),
        TAG_LAST_ACTION_GATE: gate.id if gate else "-",
        TAG_LAST_ACTION_BY: by,
    }


def _serving(
    rt: Runtime, model: str, kind: ActionKind, by: str, gate: Gate | None
) -> tuple[str, list[ModelVersionRef], ModelVersionRef | None]:
    """The serving alias, the versions, and the one serving; a registry that does not answer
    is recorded as a failed ``kind`` action before the error goes up."""
    alias = rt.config.model(model).serving_alias
    try:
        versions = rt.registry.list_versions(model)
    except UnreachableError as exc:
        rt.store.record_action(
            ActionIn(
                gate_id=gate.id if gate else None,
                model=model,
                model_version=gate.model_version if gate else "-",
                action=kind,
                params={"alias": alias},
                requested_by=by,
                status="failed",
                result={"error": str(exc)},
            )
        )
        raise
    current = next((v for v in versions if alias in v.aliases), None)
    return alias, versions, current


def _number(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (-1, version)


def rollback_target(
    rt: Runtime, model: str, versions: list[ModelVersionRef], current: ModelVersionRef | None
) -> ModelVersionRef | None:
    """The newest version older than ``current`` that passed its gate and was not withdrawn.

    Passing is the ``prodcontrol.approved=true`` tag, or an approved promotion gate in the
    evidence store for a version whose tag does not say otherwise.
    """
    gated = {
        g.model_version
        for g in rt.store.list_gates(status="approved", model=model)
        if g.kind == "promotion"
    }
    below = _number(current.version) if current else None
    candidates = [
        v
        for v in versions
        if (current is None or v.version != current.version)
        and (below is None or _number(v.version) < below)
        and v.tags.get(TAG_ROLLED_BACK) != "true"
        and v.tags.get(TAG_RETIRED) != "true"
        and (
            v.tags.get(TAG_APPROVED) == "true"
            or (v.version in gated and v.tags.get(TAG_APPROVED) != "false")
        )
    ]
    return max(candidates, key=lambda v: _number(v.version), default=None)


def rollback(rt: Runtime, model: str, *, by: str, reason: str, gate: Gate | None = None) -> Action:
    """Move the serving alias to the last version that passed its gate.

    With no such version a gate's rollback falls back to :func:`suspend` (fail safe: a model
    that must not keep serving is stopped); a manual rollback is refused and says so.
    """
    alias, versions, current = _serving(rt, model, "rollback", by, gate)
    target = rollback_target(rt, model, versions, current)
    if target is None:
        why = (
            f"{model} has no earlier version that passed its gate (tag {TAG_APPROVED}=true) "
            f"to roll back to"
        )
        rt.store.record_action(
            ActionIn(
                gate_id=gate.id if gate else None,
                model=model,
                model_version=current.version if current else "-",
                action="rollback",
                params={"alias": alias, "reason": reason},
                requested_by=by,
                status="failed",
                result={"error": why},
            )
        )
        if gate is None:
            raise UsageError(f"{why}; stop it instead with `prodcontrol suspend {model}`")
        return suspend(rt, model, by=by, reason=f"{reason}; {why}", gate=gate)

    def change() -> dict[str, Any]:
        stamp = _stamp(rt, "rollback", by, gate)
        rt.registry.set_alias(model, alias, target.version)
        rt.registry.set_version_tags(
            model, target.version, stamp | {TAG_SUSPENDED: "false", TAG_STAGE: "production"}
        )
        if current is not None:
            withdrawn = {TAG_APPROVED: "false", TAG_ROLLED_BACK: "true"}
            rt.registry.set_version_tags(model, current.version, stamp | withdrawn)
        return {
            "model_version": target.version,
            "alias": alias,
            "from_version": current.version if current else None,
            "to_version": target.version,
        }

    return _execute(
        rt,
        "rollback",
        model,
        target.version,
        by=by,
        gate=gate,
        params={"alias": alias, "reason": reason},
        change=change,
    )


def suspend(rt: Runtime, model: str, *, by: str, reason: str, gate: Gate | None = None) -> Action:
    """Stop to a safe state: remove the serving alias and set the kill-switch tag."""
    alias, versions, current = _serving(rt, model, "suspend", by, gate)
    target = current
    if target is None and gate is not None:
        target = next((v for v in versions if v.version == gate.model_version), None)

    def change() -> dict[str, Any]:
        if target is None or (current is None and is_suspended(target)):
            raise Skip(f"{model} has no '{alias}' alias and is already stopped")
        stamp = _stamp(rt, "suspend", by, gate)
        if current is not None:
            rt.registry.delete_alias(model, alias)
        rt.registry.set_version_tags(model, target.version, stamp | {TAG_SUSPENDED: "true"})
        return {
            "model_version": target.version,
            "alias_removed": alias if current is not None else None,
            "kill_switch": f"{TAG_SUSPENDED}=true",
        }

    return _execute(
        rt,
        "suspend",
        model,
        target.version if target else "-",
        by=by,
        gate=gate,
        params={"alias": alias, "reason": reason},
        change=change,
    )


def promote(rt: Runtime, gate: Gate) -> Action:
    """Move the gate's version to the serving alias; only through an approved promotion gate."""
    if gate.kind != "promotion" or gate.status != "approved":
        raise DecisionRefused(
            f"gate {gate.id} is a {gate.status} {gate.kind} gate; a version is promoted only "
            f"through an approved promotion gate (`prodcontrol promote MODEL VERSION --to ...`)"
        )
    entry = rt.config.model(gate.model)
    missing = missing_owner_roles(entry)
    stage = str(gate.context.get("to_stage", "production"))
    if missing:
        raise DecisionRefused(
            f"{gate.model} cannot be promoted: no owner for {', '.join(missing)}; "
            f"name them in models.yaml"
        )
    by = _deciders(rt, gate)
    version = gate.model_version

    def change() -> dict[str, Any]:
        before = next(
            (v for v in rt.registry.list_versions(gate.model) if entry.serving_alias in v.aliases),
            None,
        )
        rt.registry.set_alias(gate.model, entry.serving_alias, version)
        tags = {
            TAG_APPROVED: "true",
            TAG_APPROVED_AT: rt.clock.now().isoformat(timespec="seconds"),
            TAG_SUSPENDED: "false",
            TAG_ROLLED_BACK: "false",
            TAG_STAGE: stage,
        }
        rt.registry.set_version_tags(gate.model, version, _stamp(rt, "promote", by, gate) | tags)
        return {
            "alias": entry.serving_alias,
            "from_version": before.version if before else None,
            "to_version": version,
            "to_stage": stage,
        }

    return _execute(
        rt,
        "promote",
        gate.model,
        version,
        by=by,
        gate=gate,
        params={"to_stage": stage},
        change=change,
    )


def retire(rt: Runtime, gate: Gate) -> Action:
    """Remove every alias of the model and tag its versions retired; evidence stays."""
    if gate.kind != "retire" or gate.status != "approved":
        raise DecisionRefused(
            f"gate {gate.id} is a {gate.status} {gate.kind} gate; a model is retired only "
            f"through an approved retire gate (`prodcontrol retire MODEL`)"
        )
    by = _deciders(rt, gate)

    def change() -> dict[str, Any]:
        versions = rt.registry.list_versions(gate.model)
        removed = sorted({a for v in versions for a in v.aliases})
        for alias in removed:
            rt.registry.delete_alias(gate.model, alias)
        stamp = _stamp(rt, "retire", by, gate) | {TAG_RETIRED: "true", TAG_STAGE: "retired"}
        for v in versions:
            rt.registry.set_version_tags(gate.model, v.version, stamp)
        return {"aliases_removed": removed, "versions": [v.version for v in versions]}

    return _execute(
        rt,
        "retire",
        gate.model,
        gate.model_version,
        by=by,
        gate=gate,
        params={"to_stage": "retired"},
        change=change,
    )


def accept(rt: Runtime, gate: Gate, *, by: str) -> Action:
    """Accept a finding (approved by people, or by timeout): the version keeps serving."""
    approved = gate.status == "approved"
    # a waived finding stays waived: when its waiver ends it must open again
    if gate.finding_id and rt.store.get_finding(gate.finding_id).status == "open":
        how = "approved" if approved else "accepted on timeout"
        rt.store.set_finding_status(gate.finding_id, "closed", f"{how} at gate {gate.id}")
    if not approved:
        _notify_timeout_accept(rt, gate)

    def change() -> dict[str, Any]:
        # accepting a finding keeps the version serving; it does not re-approve it (that would
        # move the performance baseline and the rollback target without a promotion gate)
        tags = _stamp(rt, "accept", by, gate) | {
            TAG_ACCEPTED: f"{gate.finding_id or '-'} ({'approved' if approved else 'timeout'})"
        }
        rt.registry.set_version_tags(gate.model, gate.model_version, tags)
        return {"finding_id": gate.finding_id, "how": "approved" if approved else "timeout"}

    return _execute(
        rt,
        "accept",
        gate.model,
        gate.model_version,
        by=by,
        gate=gate,
        params={"finding_id": gate.finding_id},
        change=change,
    )


def _notify_timeout_accept(rt: Runtime, gate: Gate) -> None:
    """Low and medium tiers accept on timeout and tell the risk channel (outbox, once)."""
    tier = rt.config.tier(rt.config.model(gate.model))
    text = (
        f"Gate {gate.id} on {gate.model} v{gate.model_version} timed out with no decision; "
        f"the finding was accepted as the tier's policy says."
    )
    rt.store.enqueue(
        [
            NotificationIn(
                idempotency_key=f"gate:{gate.id}:timeout-accept",
                recipient_kind="channel",
                recipient=tier.risk_channel,
                payload={"text": text, "kind": "gate_timeout_accept"},
                gate_id=gate.id,
                finding_id=gate.finding_id,
            )
        ]
    )


def accept_with_waiver(
    rt: Runtime,
    *,
    model: str,
    model_version: str,
    by: str,
    params: dict[str, Any],
    control_id: str,
    expires_at: str,
) -> Action:
    """Record a waiver's acceptance and show it on the model version."""

    def change() -> dict[str, Any]:
        tags = _stamp(rt, "accept_with_waiver", by, None) | {
            f"prodcontrol.waiver.{control_id}": expires_at
        }
        rt.registry.set_version_tags(model, model_version, tags)
        return {"control_id": control_id, "expires_at": expires_at}

    return _execute(
        rt,
        "accept_with_waiver",
        model,
        model_version,
        by=by,
        gate=None,
        params=params,
        change=change,
    )


# --------------------------------------------------------------------------- by hand


MANUAL_RIGHTS: dict[str, tuple[DecisionRight, ...]] = {
    "suspend": ("shutdown",),
    "rollback": ("shutdown", "change"),
}


def check_manual_right(rt: Runtime, model: str, action: str, person: str, reason: str) -> None:
    """A person may roll back or suspend by hand if they hold the right; refusals are recorded."""
    entry = rt.config.model(model)
    rights = MANUAL_RIGHTS[action]
    holders = set().union(*(rt.config.holders_of(entry, r) for r in rights))
    problem = None
    if not reason.strip():
        problem = f"a {action} needs a reason (--reason)"
    elif person not in rt.config.inventory.people:
        problem = f"'{person}' is not in people.yaml"
    elif person not in holders:
        problem = f"{person} does not hold the {' or '.join(rights)} right for {model}"
    if problem is None:
        return
    message = f"{action} of {model} refused: {problem}; who could: {', '.join(sorted(holders))}"
    rt.store.record_event(
        f"{action}_refused",
        "model",
        model,
        model,
        {"person": person, "reason": reason, "refused": problem, "could": sorted(holders)},
    )
    raise DecisionRefused(message)


def manual_rollback(rt: Runtime, model: str, *, person: str, reason: str) -> Action:
    check_manual_right(rt, model, "rollback", person, reason)
    return rollback(rt, model, by=person, reason=reason)


def manual_suspend(rt: Runtime, model: str, *, person: str, reason: str) -> Action:
    check_manual_right(rt, model, "suspend", person, reason)
    return suspend(rt, model, by=person, reason=reason)
