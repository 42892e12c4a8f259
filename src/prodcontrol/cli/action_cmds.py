"""``rollback``, ``suspend``, ``promote`` and ``retire``: what people do to a model in MLflow.

Rollback and suspend act at once for a person who holds the right (a stop to a safe state must
not wait for a meeting, EU AI Act Art. 14(4)(e)); promote and retire open a gate that others
approve with ``prodcontrol gates approve``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import AsOpt, BreakGlassOpt, ReasonOpt, acting
from prodcontrol.cli.output import console, emit_object
from prodcontrol.evidence.records import Action, Gate
from prodcontrol.runtime import Runtime

ModelArg = Annotated[str, typer.Argument(help="The model's name in models.yaml.")]


def _action(action: Action, as_json: bool) -> None:
    row: dict[str, Any] = {
        "action": action.action,
        "status": action.status,
        "model": action.model,
        "version": action.model_version,
        "by": action.requested_by,
        **action.result,
        "id": action.id,
    }
    emit_object(row, as_json=as_json, title=f"{action.action} {action.status}")


def _gate(rt: Runtime, gate: Gate, as_json: bool) -> None:
    from prodcontrol.control.gates import decisions

    could = decisions.who_could_decide(rt, gate, "approve")
    row: dict[str, Any] = {
        "gate": gate.id,
        "kind": gate.kind,
        "model": gate.model,
        "version": gate.model_version,
        "status": gate.status,
        "right": gate.right,
        "approvals_needed": gate.required_approvals,
        "could_approve": could,
        "due_at": gate.due_at.isoformat(timespec="minutes") if gate.due_at else None,
        **{k: v for k, v in gate.context.items() if k in {"to_stage", "from_stage", "reason"}},
    }
    emit_object(row, as_json=as_json, title=f"{gate.kind} gate opened")
    if not as_json:
        console.print(
            f"approve with: prodcontrol gates approve {gate.id} --reason '...' "
            "(PRODCONTROL_TOKEN set to the approver's token)"
        )


def _stop_command(kind: Literal["rollback", "suspend"], doc: str) -> Callable[..., None]:
    """``rollback`` and ``suspend``: the same command but for what it does to the model."""

    def command(  # noqa: PLR0917 - typer maps each parameter to an argument or option
        model: ModelArg,
        reason: ReasonOpt,
        person: AsOpt = None,
        break_glass: BreakGlassOpt = False,
        as_json: JsonOpt = False,
        catalog: CatalogOpt = None,
        inventory: InventoryOpt = None,
    ) -> None:
        from prodcontrol.control.gates import actions

        rt = runtime(catalog, inventory)
        who = acting(
            rt,
            person,
            break_glass=break_glass,
            reason=reason,
            command=f"{kind} {model}",
            model=model,
        ).person
        stop = actions.manual_rollback if kind == "rollback" else actions.manual_suspend
        _action(stop(rt, model, person=who, reason=reason), as_json)

    command.__name__ = command.__qualname__ = kind
    command.__doc__ = doc
    return command


rollback = _stop_command(
    "rollback", "Move MODEL's serving alias back to the last version that passed its gate."
)
suspend = _stop_command(
    "suspend",
    "Stop MODEL: remove its serving alias and set the kill-switch tag prodcontrol.suspended.",
)


def promote(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    model: ModelArg,
    version: Annotated[str, typer.Argument(help="The registered model version to promote.")],
    to: Annotated[str, typer.Option("--to", help="pilot or production.")],
    reason: ReasonOpt,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Ask to promote VERSION of MODEL to pilot/production: opens a promotion gate.

    Needs every owner assigned and passing controls on VERSION; approving the gate moves the
    serving alias to VERSION.
    """
    from prodcontrol.control.lifecycle import lifecycle

    rt = runtime(catalog, inventory)
    who = acting(
        rt, person, break_glass=break_glass, reason=reason, command=f"promote {model}", model=model
    ).person
    gate = lifecycle.request_promotion(rt, model, version, to, requested_by=who, reason=reason)
    _gate(rt, gate, as_json)


def retire(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    model: ModelArg,
    reason: ReasonOpt,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Ask to retire MODEL: opens a retire gate.

    Approving it removes every alias and stops the model's controls; the evidence stays.
    """
    from prodcontrol.control.lifecycle import lifecycle

    rt = runtime(catalog, inventory)
    who = acting(
        rt, person, break_glass=break_glass, reason=reason, command=f"retire {model}", model=model
    ).person
    _gate(rt, lifecycle.request_retirement(rt, model, requested_by=who, reason=reason), as_json)


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
    app.command("suspend")(suspend)
    app.command("promote")(promote)
    app.command("retire")(retire)
