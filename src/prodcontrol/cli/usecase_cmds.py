"""``usecase request|approve|reject|show``: approve a use case before it leaves experimentation."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import AsOpt, BreakGlassOpt, ReasonOpt, acting
from prodcontrol.cli.output import emit, emit_object
from prodcontrol.evidence.records import DecisionValue, Gate

usecase_app = typer.Typer(
    help="Use-case approval (use-case and funding rights) before a model leaves experimentation.",
    no_args_is_help=True,
)


def _rows(gates: list[Gate]) -> list[dict[str, object]]:
    return [
        {
            "gate": g.id,
            "right": g.right,
            "status": g.status,
            "approvals_needed": g.required_approvals,
            "requested_by": g.requested_by,
            "due_at": g.due_at,
        }
        for g in gates
    ]


@usecase_app.command("request")
def request_cmd(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    model: str,
    person: AsOpt = None,
    reason: ReasonOpt = "",
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Ask the holders of the use-case and funding rights to approve MODEL's use case."""
    from prodcontrol.control.lifecycle import usecase

    rt = runtime(catalog, inventory)
    who = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"usecase request {model}",
        model=model,
    ).person
    gates = usecase.request(rt, model, requested_by=who)
    emit(_rows(gates), as_json=as_json, title=f"Use-case approval requested for {model}")


def _decide(
    model: str,
    *,
    person: str | None,
    break_glass: bool,
    value: DecisionValue,
    reason: str,
    conditions: list[str] | None,
    as_json: bool,
    catalog: CatalogOpt,
    inventory: InventoryOpt,
) -> None:
    from prodcontrol.control.lifecycle import usecase

    rt = runtime(catalog, inventory)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"usecase {value} {model}",
        model=model,
    )
    gates = usecase.decide(
        rt,
        model,
        person=actor.person,
        decision=value,
        reason=reason,
        conditions=conditions,
        credential=actor.credential,
    )
    title = f"{actor.person} decided {value} on {model}'s use case"
    emit(_rows(gates), as_json=as_json, title=title)


@usecase_app.command("approve")
def approve_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
    model: str,
    person: AsOpt = None,
    reason: ReasonOpt = "",
    break_glass: BreakGlassOpt = False,
    condition: Annotated[
        list[str] | None,
        typer.Option("--condition", help="A condition of the approval; repeat for several."),
    ] = None,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Approve MODEL's use case on every pending gate whose right you hold."""
    _decide(
        model,
        person=person,
        break_glass=break_glass,
        value="approve",
        reason=reason,
        conditions=condition,
        as_json=as_json,
        catalog=catalog,
        inventory=inventory,
    )


@usecase_app.command("reject")
def reject_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
    model: str,
    person: AsOpt = None,
    reason: ReasonOpt = "",
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Reject MODEL's use case."""
    _decide(
        model,
        person=person,
        break_glass=break_glass,
        value="reject",
        reason=reason,
        conditions=None,
        as_json=as_json,
        catalog=catalog,
        inventory=inventory,
    )


@usecase_app.command("tier-change")
def tier_change_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
    model: str,
    to: Annotated[str, typer.Option("--to", help="The risk tier to move the model to.")],
    person: AsOpt = None,
    reason: ReasonOpt = "",
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Ask to move MODEL to another risk tier: a gate for the holders of the change right."""
    from prodcontrol.control.lifecycle import usecase

    rt = runtime(catalog, inventory)
    who = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"usecase tier-change {model}",
        model=model,
    ).person
    gate = usecase.request_tier_change(rt, model, to, requested_by=who, reason=reason)
    emit(_rows([gate]), as_json=as_json, title=f"Tier change of {model} to {to} requested")


@usecase_app.command("show")
def show_cmd(
    model: str, as_json: JsonOpt = False, catalog: CatalogOpt = None, inventory: InventoryOpt = None
) -> None:
    """The use case of MODEL and where its approval stands."""
    from prodcontrol.control.lifecycle import usecase

    rt = runtime(catalog, inventory)
    entry = rt.config.model(model)
    found = usecase.status(rt, model)
    info: dict[str, object] = {"model": model, "stage": entry.stage, "tier": entry.tier}
    if entry.use_case is not None:
        info |= {
            "purpose": entry.use_case.purpose,
            "kpi": entry.use_case.expected_value.kpi,
            "metric_key": entry.use_case.expected_value.metric_key,
            "target": entry.use_case.expected_value.target,
            "review_date": entry.use_case.expected_value.review_date,
            "data_used": entry.use_case.data_used,
            "tier_requested": entry.use_case.tier_requested,
        }
    info |= {"approved": found.approved, "gates": found.gates}
    emit_object(info, as_json=as_json, title=f"Use case of {model}")


def register(app: typer.Typer) -> None:
    app.add_typer(usecase_app, name="usecase")
