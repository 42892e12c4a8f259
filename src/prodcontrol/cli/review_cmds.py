"""``review open|due|complete``: periodic model review gates with the catalog's checklist."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import AsOpt, BreakGlassOpt, BreakGlassReasonOpt, acting
from prodcontrol.cli.output import emit
from prodcontrol.evidence.records import Gate

review_app = typer.Typer(
    help="Periodic model review: open review gates, complete them against the checklist.",
    no_args_is_help=True,
)


def _rows(gates: list[Gate]) -> list[dict[str, object]]:
    return [
        {
            "gate": g.id,
            "model": g.model,
            "status": g.status,
            "approvals_needed": g.required_approvals,
            "due_at": g.due_at,
            "checklist": g.context.get("checklist", []),
        }
        for g in gates
    ]


@review_app.command("open")
def open_cmd(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    model: str,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    reason: BreakGlassReasonOpt = "",
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Open MODEL's review gate now (a pending one is shown instead)."""
    from prodcontrol.control.lifecycle import model_review

    rt = runtime(catalog, inventory)
    who = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"review open {model}",
        model=model,
    ).person
    gate = model_review.open_review(rt, model, requested_by=who)
    emit(_rows([gate]), as_json=as_json, title=f"Review of {model}")


@review_app.command("due")
def due_cmd(
    as_json: JsonOpt = False, catalog: CatalogOpt = None, inventory: InventoryOpt = None
) -> None:
    """Open a review gate for every controlled model whose tier cadence says it is due."""
    from prodcontrol.control.lifecycle import model_review

    rt = runtime(catalog, inventory)
    emit(_rows(model_review.open_due_reviews(rt)), as_json=as_json, title="Reviews due")


@review_app.command("complete")
def complete_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
    model: str,
    person: AsOpt = None,
    checked: Annotated[
        list[str] | None,
        typer.Option("--checked", help="A checklist item you checked; repeat for each."),
    ] = None,
    notes: Annotated[str, typer.Option("--notes", help="What you found.")] = "",
    reject: Annotated[
        bool, typer.Option("--reject", help="The model is not fit for purpose.")
    ] = False,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Record your review of MODEL against its checklist and decide the review gate."""
    from prodcontrol.control.lifecycle import model_review

    rt = runtime(catalog, inventory)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=notes,
        command=f"review complete {model}",
        model=model,
    )
    gate = model_review.complete(
        rt,
        model,
        person=actor.person,
        checked=list(checked or []),
        notes=notes,
        approve=not reject,
        credential=actor.credential,
    )
    emit(_rows([gate]), as_json=as_json, title=f"{actor.person} reviewed {model}")


def register(app: typer.Typer) -> None:
    app.add_typer(review_app, name="review")
