"""``report operating-review`` and ``report digest``: how well the controls themselves work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.output import console, emit, emit_object

report_app = typer.Typer(
    help="Reports on the controls: the operating review.", no_args_is_help=True
)


def _summary(review: Any) -> dict[str, Any]:
    m = review.current.overall
    return {
        "period": review.period,
        "tier": review.tier or "all",
        "runs_on_schedule": f"{m.runs_on_schedule}/{m.runs_expected}",
        "findings_opened": m.findings_opened,
        "median_ack_h": _h(m.time_to_acknowledge.median_s),
        "median_decide_h": _h(m.time_to_decide.median_s),
        "sla_breaches": m.sla_breaches,
        "escalations_last_step": m.escalations_last_step,
        "waivers_granted_expired_renewed": (
            f"{m.waivers_granted}/{m.waivers_expired}/{m.waivers_renewed}"
        ),
        "rollbacks": m.rollbacks,
        "suspensions": m.suspensions,
        "overdue_for_review": m.models_overdue_for_review,
        "recommendations": len(review.recommendations),
    }


def _h(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f}"


@report_app.command("operating-review")
def operating_review(  # noqa: PLR0917 - typer maps each parameter to an option
    period: Annotated[
        str | None, typer.Option("--period", help="Month to review, YYYY-MM (default: this month).")
    ] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="Only this tier.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the HTML page here, e.g. review.html.")
    ] = None,
    history: Annotated[
        int, typer.Option("--history", min=0, max=24, help="Previous months in the trend plots.")
    ] = 5,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Control effectiveness for a month: numbers, trends, worst offenders, recommendations."""
    from prodcontrol.control.reports.review_report import build, render_html, to_json

    rt = runtime(catalog, inventory)
    now = rt.clock.now()
    label = period or f"{now.year:04d}-{now.month:02d}"
    review = build(rt.store, rt.config, label, now, tier=tier, history=history)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(review), encoding="utf-8")
    if as_json:
        import json

        typer.echo(json.dumps(to_json(review), indent=2, ensure_ascii=False))
        return
    emit_object(_summary(review), as_json=False, title=f"Operating review {review.period}")
    rows = [r.model_dump() for r in review.recommendations]
    if rows:
        emit(rows, as_json=False, title="Recommendations", columns=("subject", "finding", "action"))
    if out is not None:
        console.print(f"written: {out}")


@report_app.command("digest")
def digest(
    as_json: JsonOpt = False, catalog: CatalogOpt = None, inventory: InventoryOpt = None
) -> None:
    """Queue this week's digest for each tier's risk channel (once per ISO week)."""
    from prodcontrol.control.reports.review_report import post_weekly_digest

    rt = runtime(catalog, inventory)
    queued = post_weekly_digest(rt)
    emit(
        [
            {
                "channel": n.recipient,
                "key": n.idempotency_key,
                "status": n.status,
                "text": n.payload.get("text", ""),
            }
            for n in queued
        ],
        as_json=as_json,
        title="Weekly digest queued in the outbox",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
