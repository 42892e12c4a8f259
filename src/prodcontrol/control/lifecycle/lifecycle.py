"""Moving a model between lifecycle stages, always through a gate (DESIGN §1).

``promote MODEL VERSION --to pilot|production`` opens a promotion gate only when every owner
role is assigned and the candidate version's latest control run has no ``fail`` or ``error``;
approving it moves the serving alias (:func:`prodcontrol.control.gates.actions.promote`). ``retire
MODEL`` opens a retire gate; approving it removes the aliases and stops the controls, keeping the
evidence. The inventory file keeps the declared stage; the stage in force is the declared one
overridden by the newest applied promote/retire action (:func:`effective_stage`), and the
orchestration runs controls only where :func:`is_controlled` holds.
"""

from __future__ import annotations

from typing import Literal

from prodcontrol.catalog.readiness import missing_owner_roles
from prodcontrol.catalog.types import CONTROLLED_STAGES, Stage
from prodcontrol.control.lifecycle import incidents, usecase
from prodcontrol.control.ports import GatePorts
from prodcontrol.engine import gates as rules
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.evidence.records import Gate

TargetStage = Literal["pilot", "production"]
STAGES: tuple[str, ...] = ("experimentation", "pilot", "production", "retired")


def effective_stage(rt: GatePorts, model: str) -> Stage:
    """The declared stage, unless an applied promote or retire action moved the model since."""
    declared = rt.config.model(model).stage
    for action in reversed(rt.store.list_actions(model)):
        if action.status == "applied" and action.action in {"promote", "retire"}:
            stage = str(action.params.get("to_stage", declared))
            return stage if stage in STAGES else declared  # type: ignore[return-value]
    return declared


def is_controlled(rt: GatePorts, model: str) -> bool:
    """Whether production controls run on the model now (pilot or production, not retired)."""
    return effective_stage(rt, model) in CONTROLLED_STAGES


def _refuse(rt: GatePorts, model: str, what: str, problem: str, payload: dict[str, object]) -> None:
    rt.store.record_event(f"{what}_refused", "model", model, model, payload | {"why": problem})
    raise DecisionRefused(f"{what} of {model} refused: {problem}")


def _check_person(rt: GatePorts, person: str) -> None:
    if person not in rt.config.inventory.people:
        known = ", ".join(sorted(rt.config.inventory.people))
        raise UsageError(f"unknown person '{person}'; people.yaml has: {known}")


def candidate_problem(rt: GatePorts, model: str, version: str) -> str | None:
    """Why ``version`` cannot be promoted on its control evidence, or ``None``."""
    runs = [
        r for r in rt.store.list_runs(model) if r.model_version == version and r.status != "running"
    ]
    if not runs:
        return (
            f"no finished control run on version {version}; run the tier's controls on that "
            f"version first (a promotion needs passing controls on the candidate)"
        )
    latest = runs[-1]
    bad = [
        f"{v.control_id}={v.verdict}"
        for v in rt.store.verdicts_for(latest.id)
        if v.verdict in {"fail", "error"}
    ]
    if bad:
        return f"the latest control run {latest.id} on version {version} has {', '.join(bad)}"
    return None


def request_promotion(
    rt: GatePorts,
    model: str,
    version: str,
    to_stage: str,
    *,
    requested_by: str,
    reason: str,
) -> Gate:
    """Open (or return the pending) promotion gate for ``version``; refusals are recorded."""
    if to_stage not in {"pilot", "production"}:
        raise UsageError(f"--to must be pilot or production, not '{to_stage}'")
    entry = rt.config.model(model)
    _check_person(rt, requested_by)
    current = effective_stage(rt, model)
    payload: dict[str, object] = {
        "version": version,
        "to_stage": to_stage,
        "from_stage": current,
        "requested_by": requested_by,
        "reason": reason,
    }
    missing = missing_owner_roles(entry)
    known_versions = {v.version for v in rt.registry.list_versions(model)}
    problem = None
    if not reason.strip():
        problem = "a promotion needs a reason (--reason)"
    elif current == "retired":
        problem = f"{model} is retired; a retired model is not promoted again"
    elif missing:
        problem = (
            f"ownership readiness: no owner for {', '.join(missing)}; name a person for each "
            f"role in models.yaml before {to_stage}"
        )
    elif current == "experimentation" and (why := usecase.problem(rt, model)):
        problem = why
    elif version not in known_versions:
        problem = f"the registry has no version {version} of {model}"
    elif unreported := incidents.unreported(rt, model):
        problem = (
            f"serious incident {', '.join(unreported)} on {model} is not reported yet; the "
            "AI Act (Art. 73(6)) forbids altering the system in a way that may affect the "
            "evaluation of its causes before the authorities are informed: report it first "
            f"(prodcontrol incident report {unreported[0]} --kind initial --reference REF)"
        )
    else:
        problem = candidate_problem(rt, model, version)
    if problem:
        _refuse(rt, model, "promotion", problem, payload)
    for gate in rt.store.list_gates(status="pending", model=model):
        if (
            gate.kind == "promotion"
            and gate.model_version == version
            and gate.context.get("to_stage") == to_stage
        ):
            return gate
    spec = rules.lifecycle_gate(
        rt.config.tier(entry),
        "promotion",
        model=model,
        model_version=version,
        requested_by=requested_by,
        now=rt.clock.now(),
        on_approve="promote",
        context=payload | {"readiness": "ready"},
    )
    return rt.store.open_gate(spec)


def request_retirement(rt: GatePorts, model: str, *, requested_by: str, reason: str) -> Gate:
    """Open (or return the pending) retire gate for the model."""
    entry = rt.config.model(model)
    _check_person(rt, requested_by)
    payload: dict[str, object] = {"requested_by": requested_by, "reason": reason}
    if not reason.strip():
        _refuse(rt, model, "retirement", "retiring needs a reason (--reason)", payload)
    if effective_stage(rt, model) == "retired":
        _refuse(rt, model, "retirement", f"{model} is already retired", payload)
    for gate in rt.store.list_gates(status="pending", model=model):
        if gate.kind == "retire":
            return gate
    versions = rt.registry.list_versions(model)
    serving = next((v for v in versions if entry.serving_alias in v.aliases), None)
    newest = max(versions, key=lambda v: (v.version.isdigit(), v.version.zfill(12)), default=None)
    chosen = serving or newest
    version = chosen.version if chosen else "-"
    spec = rules.lifecycle_gate(
        rt.config.tier(entry),
        "retire",
        model=model,
        model_version=version,
        requested_by=requested_by,
        now=rt.clock.now(),
        on_approve="retire",
        context=payload | {"from_stage": effective_stage(rt, model), "to_stage": "retired"},
    )
    return rt.store.open_gate(spec)
