"""What decisions do in the model registry: rollback, suspend, promote, retire, accept.

Each action is recorded in the evidence store (``record_action``) and shows on the MLflow model
version as ``prodcontrol.*`` tags, so MLflow users see it where they look. An action that a gate
set off is idempotent by gate id: applying it again returns the action already recorded and
touches nothing.

A gate's action is queued (status ``requested``) in the decision's own transaction and applied
by :func:`apply_requested`: right after the decision, and by every tick until it is done. It is
bound to the decided version: a rollback or suspend acts only while the serving alias still
points at ``gate.model_version`` (compare before set), otherwise it is ``skipped`` with the reason
and escalated. An unreachable registry puts it back with backoff (the command still exits 3),
and after the tier's ``gate.action_attempts`` it is ``dead`` and escalated. A manual action
(``prodcontrol rollback``) is applied at once and recorded ``failed`` if the registry is down.

Tags serving code reads (MLflow 3 has no stages, only aliases and tags):

- ``prodcontrol.suspended=true``: the kill switch (EU AI Act Art. 14(4)(e)); serving must refuse
  a version carrying it, and the serving alias is removed as well;
- ``prodcontrol.approved=true``: the version passed its gate; rollback goes to the newest such
  version older than the one serving.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.schema import TierPolicy
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.control.ports import ActionPorts
from prodcontrol.engine import gates as rules
from prodcontrol.errors import DecisionRefused, StoreConflict, UnreachableError, UsageError
from prodcontrol.evidence.records import (
    Action,
    ActionIn,
    ActionKind,
    Gate,
    NotificationIn,
)
from prodcontrol.ports import ModelVersionRef

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
    """Nothing to change in the registry; the action is recorded as ``skipped`` with why.

    ``escalate``: the skip means a decision could not be carried out (tell the risk channel).
    """

    def __init__(self, why: str, version: str | None = None, *, escalate: bool = False) -> None:
        super().__init__(why)
        self.why, self.version, self.escalate = why, version, escalate


def is_suspended(version: ModelVersionRef) -> bool:
    """What serving code checks before it loads a version: the kill switch."""
    return version.tags.get(TAG_SUSPENDED) == "true"


def done_for_gate(rt: ActionPorts, gate: Gate) -> Action | None:
    """The action a gate already set off (applied or skipped), if any."""
    for action in reversed(rt.store.list_actions(gate.model)):
        if action.gate_id == gate.id and action.status in DONE:
            return action
    return None


# --------------------------------------------------------------------------- gate outcomes

RETRY_FIRST_S = 60.0
RETRY_MAX_S = 3600.0


def requested_action(gate: Gate, by: str) -> ActionIn | None:
    """The action a gate closing with its current status asks for, to queue with the decision."""
    kind = rules.outcome_action(gate)
    if kind is None:
        return None
    if kind not in APPLIERS:
        raise UsageError(f"gate {gate.id} names an unknown action '{kind}'; fix the gate's policy")
    return ActionIn(
        gate_id=gate.id,
        model=gate.model,
        model_version=gate.model_version,
        action=kind,
        params={"gate_status": gate.status},
        requested_by=by,
        status="requested",
    )


def apply_gate_outcome(rt: ActionPorts, gate: Gate) -> Action | None:
    """Apply what a closed gate asked for now; a second call returns what was done.

    A gate closed without a queued action (decided before actions were queued) gets one.
    """
    existing = done_for_gate(rt, gate)
    if existing is not None or rules.outcome_action(gate) is None:
        return existing
    if not any(a.gate_id == gate.id for a in rt.store.list_actions(gate.model)):
        request = requested_action(gate, _deciders(rt, gate))
        if request is not None:
            rt.store.record_action(request)
    applied = apply_requested(rt, gate_id=gate.id, raise_unreachable=True)
    return applied[0] if applied else done_for_gate(rt, gate)


def apply_requested(
    rt: ActionPorts, *, gate_id: str | None = None, raise_unreachable: bool = False
) -> list[Action]:
    """Apply every queued action that is due (the ticker), or only the gate's (right after its
    decision). Each is leased first, so two tickers never apply one action twice.

    A registry that does not answer puts the action back with backoff (one minute, doubling, at
    most an hour); after the tier's ``gate.action_attempts`` it is dead-lettered and escalated
    to the tier's risk channel. Returns the actions that reached a final state.
    """
    settled = []
    unreachable: UnreachableError | None = None
    for queued in rt.store.claim_actions(rt.clock.now(), gate_id=gate_id):
        try:
            settled.append(_apply_one(rt, queued))
        except UnreachableError as exc:
            done = _retry_or_dead(rt, queued, exc)
            if done is not None:
                settled.append(done)
            unreachable = exc
    if unreachable is not None and raise_unreachable:
        raise unreachable
    return settled


def _apply_one(rt: ActionPorts, queued: Action) -> Action:
    gate = rt.store.get_gate(str(queued.gate_id))
    by = _deciders(rt, gate)
    why = f"gate {gate.id} {gate.status}"
    return APPLIERS[queued.action](rt, gate, by, why, queued)


def _retry_or_dead(rt: ActionPorts, queued: Action, exc: UnreachableError) -> Action | None:
    limit = _tier_of(rt, queued.model).gate.action_attempts
    result = {"error": str(exc), "attempts": queued.attempts + 1}
    if queued.attempts + 1 >= limit:
        dead = rt.store.settle_action(queued.id, "dead", result)
        _escalate(rt, dead, f"gave up after {limit} attempts: {exc}")
        return dead
    delay = min(RETRY_FIRST_S * 2**queued.attempts, RETRY_MAX_S)
    retry_at = rt.clock.now() + timedelta(seconds=delay)
    rt.store.settle_action(queued.id, "requested", result, retry_at=retry_at)
    return None


def _tier_of(rt: ActionPorts, model: str) -> TierPolicy:
    return rt.config.tier(rt.config.model(model))


def _escalate(rt: ActionPorts, action: Action, why: str) -> None:
    """Tell the tier's risk channel that a decided action did not happen (outbox, once)."""
    try:
        channel = _tier_of(rt, action.model).risk_channel
    except UsageError:
        return
    text = (
        f"The {action.action} that gate {action.gate_id} decided for {action.model} "
        f"v{action.model_version} was {action.status}: {why}. Someone must look at the serving "
        f"alias by hand."
    )
    rt.store.enqueue(
        [
            NotificationIn(
                idempotency_key=f"action:{action.id}:{action.status}",
                recipient_kind="channel",
                recipient=channel,
                payload={"text": text, "kind": f"action_{action.status}", "model": action.model},
                gate_id=action.gate_id,
            )
        ]
    )


def _deciders(rt: ActionPorts, gate: Gate) -> str:
    if gate.status == "expired":
        return SYSTEM
    wanted = "approve" if gate.status == "approved" else "reject"
    people = [d.person for d in rt.store.decisions_for(gate.id) if d.decision == wanted]
    return ",".join(people) or SYSTEM


# --------------------------------------------------------------------------- the actions


def _execute(
    rt: ActionPorts,
    kind: ActionKind,
    model: str,
    version: str,
    *,
    by: str,
    gate: Gate | None,
    params: dict[str, Any],
    change: Callable[[], dict[str, Any]],
    queued: Action | None = None,
) -> Action:
    """Run ``change`` against the registry and record what happened, whatever happened.

    A queued action (a gate's) is settled in its own row; an unreachable registry leaves it
    to :func:`apply_requested`'s retry. A manual action is recorded as a new row.
    """
    if queued is not None:
        return _settle(rt, queued, kind, version, change, params=queued.params | params)
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


def _settle(
    rt: ActionPorts,
    queued: Action,
    kind: ActionKind,
    version: str,
    change: Callable[[], dict[str, Any]],
    *,
    params: dict[str, Any],
) -> Action:
    """End the queued action's lease with what ``change`` did (``kind``: a rollback with no
    approved version to go back to is carried out as a suspend)."""
    try:
        result = change()
    except Skip as skip:
        skipped = rt.store.settle_action(
            queued.id,
            "skipped",
            {"why": skip.why},
            model_version=skip.version or version,
            action=kind,
            params=params,
        )
        if skip.escalate:
            _escalate(rt, skipped, skip.why)
        return skipped
    version = str(result.pop("model_version", version))
    return rt.store.settle_action(
        queued.id, "applied", result, model_version=version, action=kind, params=params
    )


def _stale(alias: str, current: ModelVersionRef | None, gate: Gate | None) -> str | None:
    """Compare before set: why a gate's rollback or suspend must not touch the alias now."""
    if gate is None or current is None or current.version == gate.model_version:
        return None
    return (
        f"the serving alias '{alias}' points at version {current.version} now, not at version "
        f"{gate.model_version} that gate {gate.id} decided on; nothing was moved"
    )


def _stamp(rt: ActionPorts, kind: str, by: str, gate: Gate | None) -> dict[str, str]:
    return {
        TAG_LAST_ACTION: kind,
        TAG_LAST_ACTION_AT: rt.clock.now().isoformat(timespec="seconds"),
        TAG_LAST_ACTION_GATE: gate.id if gate else "-",
        TAG_LAST_ACTION_BY: by,
    }


def _serving(
    rt: ActionPorts,
    model: str,
    kind: ActionKind,
    by: str,
    gate: Gate | None,
    *,
    queued: Action | None = None,
) -> tuple[str, list[ModelVersionRef], ModelVersionRef | None]:
    """The serving alias, the versions, and the one serving; a registry that does not answer
    is recorded as a failed ``kind`` action (a queued one is retried) before the error goes up."""
    alias = rt.config.model(model).serving_alias
    try:
        versions = rt.registry.list_versions(model)
    except UnreachableError as exc:
        if queued is not None:
            raise
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
    rt: ActionPorts, model: str, versions: list[ModelVersionRef], current: ModelVersionRef | None
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


def rollback(
    rt: ActionPorts,
    model: str,
    *,
    by: str,
    reason: str,
    gate: Gate | None = None,
    queued: Action | None = None,
) -> Action:
    """Move the serving alias to the last version that passed its gate.

    A gate's rollback acts only while the alias still serves the gate's version (otherwise it
    is skipped with the reason and escalated). With no earlier approved version a gate's
    rollback falls back to :func:`suspend` (fail safe: a model that must not keep serving is
    stopped); a manual rollback is refused and says so.
    """
    alias, versions, current = _serving(rt, model, "rollback", by, gate, queued=queued)
    stale = _stale(alias, current, gate)
    params = {"alias": alias, "reason": reason}
    if stale is not None:
        return _skip(rt, "rollback", model, by=by, gate=gate, params=params, why=stale, q=queued)
    target = rollback_target(rt, model, versions, current)
    if target is None:
        why = (
            f"{model} has no earlier version that passed its gate (tag {TAG_APPROVED}=true) "
            f"to roll back to"
        )
        if queued is not None:  # the queued row says it: carried out as a suspend, and why
            return suspend(rt, model, by=by, reason=f"{reason}; {why}", gate=gate, queued=queued)
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
        return suspend(rt, model, by=by, reason=f"{reason}; {why}", gate=gate, queued=queued)

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
        params=params,
        change=change,
        queued=queued,
    )


def _skip(
    rt: ActionPorts,
    kind: ActionKind,
    model: str,
    *,
    by: str,
    gate: Gate | None,
    params: dict[str, Any],
    why: str,
    q: Action | None,
) -> Action:
    def change() -> dict[str, Any]:
        raise Skip(why, escalate=True)

    version = gate.model_version if gate else "-"
    return _execute(
        rt, kind, model, version, by=by, gate=gate, params=params, change=change, queued=q
    )


def suspend(
    rt: ActionPorts,
    model: str,
    *,
    by: str,
    reason: str,
    gate: Gate | None = None,
    queued: Action | None = None,
) -> Action:
    """Stop to a safe state: remove the serving alias and set the kill-switch tag.

    A gate's suspend acts only while the alias serves the gate's version or serves nothing.
    """
    alias, versions, current = _serving(rt, model, "suspend", by, gate, queued=queued)
    stale = _stale(alias, current, gate)
    if stale is not None:
        params = {"alias": alias, "reason": reason}
        return _skip(rt, "suspend", model, by=by, gate=gate, params=params, why=stale, q=queued)
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
        queued=queued,
    )


def promote(rt: ActionPorts, gate: Gate, queued: Action | None = None) -> Action:
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
        queued=queued,
    )


def retire(rt: ActionPorts, gate: Gate, queued: Action | None = None) -> Action:
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
        queued=queued,
    )


def accept(rt: ActionPorts, gate: Gate, *, by: str, queued: Action | None = None) -> Action:
    """Accept a finding (approved by people, or by timeout): the version keeps serving."""
    approved = gate.status == "approved"
    # a waived finding stays waived: when its waiver ends it must open again
    if gate.finding_id and rt.store.get_finding(gate.finding_id).status == "open":
        how = "approved" if approved else "accepted on timeout"
        with contextlib.suppress(StoreConflict):  # changed meanwhile: that change stands
            rt.store.set_finding_status(
                gate.finding_id, "closed", f"{how} at gate {gate.id}", expected="open"
            )
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
        queued=queued,
    )


def _notify_timeout_accept(rt: ActionPorts, gate: Gate) -> None:
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
    rt: ActionPorts,
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


Applier = Callable[[ActionPorts, Gate, str, str, Action], Action]
APPLIERS: dict[str, Applier] = {
    "accept": lambda rt, gate, by, why, q: accept(rt, gate, by=by, queued=q),
    "rollback": lambda rt, gate, by, why, q: rollback(
        rt, gate.model, by=by, reason=why, gate=gate, queued=q
    ),
    "suspend": lambda rt, gate, by, why, q: suspend(
        rt, gate.model, by=by, reason=why, gate=gate, queued=q
    ),
    "promote": lambda rt, gate, by, why, q: promote(rt, gate, q),
    "retire": lambda rt, gate, by, why, q: retire(rt, gate, q),
}


# --------------------------------------------------------------------------- by hand


MANUAL_RIGHTS: dict[str, tuple[DecisionRight, ...]] = {
    "suspend": ("shutdown",),
    "rollback": ("shutdown", "change"),
}


def check_manual_right(rt: ActionPorts, model: str, action: str, person: str, reason: str) -> None:
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


def manual_rollback(rt: ActionPorts, model: str, *, person: str, reason: str) -> Action:
    check_manual_right(rt, model, "rollback", person, reason)
    return rollback(rt, model, by=person, reason=reason)


def manual_suspend(rt: ActionPorts, model: str, *, person: str, reason: str) -> Action:
    check_manual_right(rt, model, "suspend", person, reason)
    return suspend(rt, model, by=person, reason=reason)
