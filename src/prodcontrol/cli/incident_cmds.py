"""``incident open|list|report|close|export``: the serious-incident register (EU AI Act Art. 73)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import AsOpt, BreakGlassOpt, BreakGlassReasonOpt, acting
from prodcontrol.cli.output import console, emit
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime

incident_app = typer.Typer(
    help="Serious incidents (EU AI Act Art. 73): open with the reporting deadline, chase it on "
    "the tier's chain, record the report, close, export the report draft.",
    no_args_is_help=True,
)

SEVERITIES = (
    "death (Art. 73(4): 10 days), critical-infrastructure or widespread-infringement "
    "(Art. 73(3): 2 days), health, fundamental-rights or property-environment (Art. 73(2): "
    "15 days)"
)
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (kept as evidence).")]


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{option} '{value}' is not a date; give an ISO date or time, e.g. 2026-11-30T14:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rows(rt: object, views: list[object]) -> list[dict[str, object]]:
    from prodcontrol.control.lifecycle.incidents import IncidentView

    rows = []
    for v in views:
        assert isinstance(v, IncidentView)
        rows.append(
            {
                "incident": v.id,
                "model": v.model,
                "version": v.model_version,
                "severity": v.case,
                "clause": v.clause,
                "status": v.status,
                "aware_at": v.aware_at,
                "deadline": v.deadline,
                "reported_at": v.reported_at,
                "overdue": v.overdue,
            }
        )
    return rows


def _show(rt: Runtime, gate: Gate, *, as_json: bool, title: str) -> None:
    from prodcontrol.control.lifecycle import incidents

    emit(_rows(rt, [incidents.view(rt, gate)]), as_json=as_json, title=title)


@incident_app.command("open")
def open_cmd(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    model: str,
    severity: Annotated[str, typer.Option("--severity", help=f"Which case: {SEVERITIES}.")],
    summary: Annotated[str, typer.Option("--summary", help="What happened.")],
    aware_at: Annotated[
        str | None,
        typer.Option("--aware-at", help="When you became aware (ISO time; default now)."),
    ] = None,
    occurred_at: Annotated[
        str | None, typer.Option("--occurred-at", help="When it happened (ISO time).")
    ] = None,
    causal_link: Annotated[
        str,
        typer.Option(
            "--causal-link",
            help="established, reasonably-likely, suspected or under-investigation.",
        ),
    ] = "under-investigation",
    affected: Annotated[
        str | None, typer.Option("--affected", help="Affected persons: number, categories.")
    ] = None,
    member_state: Annotated[
        list[str] | None, typer.Option("--member-state", help="Where it occurred; repeat.")
    ] = None,
    harm: Annotated[str | None, typer.Option("--harm", help="The harm or damage.")] = None,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    reason: BreakGlassReasonOpt = "",
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Open a serious incident on MODEL: deadline from the awareness date, chain started."""
    from prodcontrol.control.lifecycle import incidents

    rt = runtime(catalog, inventory)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"incident open {model}",
        model=model,
    )
    gate = incidents.open_incident(
        rt,
        model,
        person=actor.person,
        case=severity,
        summary=summary,
        aware_at=_when(aware_at, "--aware-at"),
        occurred_at=_when(occurred_at, "--occurred-at"),
        causal_link=causal_link,
        affected_persons=affected,
        member_states=list(member_state or []),
        harm=harm,
        credential=actor.credential,
    )
    _show(rt, gate, as_json=as_json, title=f"Incident on {model}")


@incident_app.command("list")
def list_cmd(
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Every incident, newest first: status, deadline, whether it was reported in time."""
    from prodcontrol.control.lifecycle import incidents

    rt = runtime(catalog, inventory)
    emit(
        _rows(rt, list(incidents.list_incidents(rt, model))),
        as_json=as_json,
        title="Serious incidents",
    )


@incident_app.command("report")
def report_cmd(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    incident: str,
    reference: Annotated[
        str, typer.Option("--reference", help="The authority's reference for your report.")
    ],
    kind: Annotated[
        str, typer.Option("--kind", help="initial (may be incomplete) or complete.")
    ] = "initial",
    causal_link: Annotated[
        str | None, typer.Option("--causal-link", help="What is known now.")
    ] = None,
    affected: Annotated[str | None, typer.Option("--affected")] = None,
    harm: Annotated[str | None, typer.Option("--harm")] = None,
    corrective: Annotated[
        str | None, typer.Option("--corrective", help="Corrective measures taken or planned.")
    ] = None,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    reason: BreakGlassReasonOpt = "",
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Record the report made to the market surveillance authority; the reminders stop."""
    from prodcontrol.control.lifecycle import incidents

    rt = runtime(catalog, inventory)
    gate = incidents.get(rt, incident)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"incident report {incident}",
        model=gate.model,
    )
    incidents.report(
        rt,
        incident,
        person=actor.person,
        kind=kind,
        reference=reference,
        causal_link=causal_link,
        affected_persons=affected,
        harm=harm,
        corrective_measures=corrective,
        credential=actor.credential,
    )
    _show(rt, gate, as_json=as_json, title=f"Incident {incident}")


@incident_app.command("close")
def close_cmd(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    incident: str,
    reason: ReasonOpt,
    dismiss: Annotated[
        bool, typer.Option("--dismiss", help="Not a serious incident after assessment.")
    ] = False,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Close the incident (reported and investigated), or --dismiss it, with a reason."""
    from prodcontrol.control.lifecycle import incidents

    rt = runtime(catalog, inventory)
    gate = incidents.get(rt, incident)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"incident close {incident}",
        model=gate.model,
    )
    closed = incidents.close(
        rt,
        incident,
        person=actor.person,
        reason=reason,
        dismiss=dismiss,
        credential=actor.credential,
    )
    _show(rt, closed, as_json=as_json, title=f"Incident {incident}")


@incident_app.command("export")
def export_cmd(
    incident: str,
    out: Annotated[Path | None, typer.Option("--out", help="Write it here (.md or .json).")] = None,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """The report draft with the facts Art. 73 asks for, from the evidence (Markdown or JSON)."""
    from prodcontrol.control.lifecycle import incidents
    from prodcontrol.engine.incidents import report_draft

    rt = runtime(catalog, inventory)
    facts = incidents.facts(rt, incident)
    want_json = as_json or (out is not None and out.suffix == ".json")
    text = json.dumps(facts.model_dump(mode="json"), indent=2) if want_json else report_draft(facts)
    if out is None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    out.write_text(text + ("\n" if want_json else ""))
    rt.store.record_event(
        "incident.exported", "gate", incident, facts.system, {"path": str(out), "json": want_json}
    )
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(incident_app, name="incident")
