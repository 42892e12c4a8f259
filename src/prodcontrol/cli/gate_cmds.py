"""``gates list|show|approve|reject`` and ``waivers grant|list|revoke``: the human decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from prodcontrol.cli import ids
from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, WideOpt, runtime
from prodcontrol.cli.identity_opts import (
    AsOpt,
    BreakGlassOpt,
    ReasonOpt,
    acting,
    finding_model,
    gate_model,
)
from prodcontrol.cli.output import console, emit, emit_object, short_ids
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import DecisionValue, Gate
from prodcontrol.runtime import Runtime

gates_app = typer.Typer(
    help="Human-intervention gates: who must decide what, and their decisions.",
    no_args_is_help=True,
)
waivers_app = typer.Typer(
    help="Waivers: findings accepted for a while, with a reason, an approver and an expiry.",
    no_args_is_help=True,
)

GateArg = Annotated[str, typer.Argument(help="The gate id (see `prodcontrol gates list`).")]
STATUSES = ("pending", "approved", "rejected", "expired", "all")


def _when(value: datetime | None) -> str | None:
    return value.isoformat(timespec="minutes") if value else None


def _short_when(value: str | None) -> str:
    """``12-01 17:43``: month, day and time of an ISO timestamp (the year is this one)."""
    return value[5:16].replace("T", " ") if value else "-"


def gate_row(rt: Runtime, gate: Gate) -> dict[str, Any]:
    approvals = sum(1 for d in rt.store.decisions_for(gate.id) if d.decision == "approve")
    return {
        "gate": gate.id,
        "model": gate.model,
        "version": gate.model_version,
        "kind": gate.kind,
        "status": gate.status,
        "approvals": f"{approvals}/{gate.required_approvals}",
        "right": gate.right,
        # a finding gate is opened *for* the owner kept from approving it; nobody requested it
        "requested_by": gate.requested_by if gate.kind != "finding" else None,
        "opened_for": gate.requested_by if gate.kind == "finding" else None,
        "due_at": _when(gate.due_at),
        "on_timeout": gate.on_timeout,
        "finding": gate.finding_id,
    }


@gates_app.command("list")
def list_gates(  # noqa: PLR0917 - typer maps each parameter to an option
    status: Annotated[
        str, typer.Option("--status", help="pending, approved, rejected, expired or all.")
    ] = "pending",
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Gates with their approvals so far, the right they need and when they time out
    (`--wide`: every column; ids: any unique prefix works in `gates show|approve|reject`)."""
    if status not in STATUSES:
        raise UsageError(f"--status {status!r}: use one of {', '.join(STATUSES)}")
    rt = runtime(catalog, inventory)
    found = rt.store.list_gates(
        status=None if status == "all" else status,  # type: ignore[arg-type]
        model=model,
    )
    rows = [gate_row(rt, g) for g in found]
    if not rows and not as_json:
        console.print(f"no {'' if status == 'all' else status + ' '}gates")
        return
    if not as_json and not wide:
        shown = short_ids([r["gate"] for r in rows])
        for row in rows:
            row["gate"] = shown[row["gate"]]
            row["model"] = f"{row['model']} v{row['version']}"
            row["due"] = _short_when(row["due_at"])
    narrow = ["gate", "model", "kind", "status", "approvals", "due"]
    emit(rows, as_json=as_json, title=f"Gates ({status})", narrow=narrow, wide=wide)


def gate_detail(rt: Runtime, gate: Gate) -> dict[str, Any]:
    from prodcontrol.control.gates import decisions

    detail = gate.model_dump(mode="json")
    if gate.kind == "finding":  # nobody requested it: it is opened for the owner kept out
        detail = {("opened_for" if k == "requested_by" else k): v for k, v in detail.items()}
    detail["decisions"] = [
        f"{d.person} {d.decision} via {d.channel} at {_when(d.decided_at)}"
        + (f": {d.reason}" if d.reason else "")
        for d in rt.store.decisions_for(gate.id)
    ]
    if gate.status == "pending":
        detail["could_approve"] = decisions.who_could_decide(rt, gate, "approve")
        detail["could_reject"] = decisions.who_could_decide(rt, gate, "reject")
    detail["actions"] = [
        f"{a.action} {a.status} (v{a.model_version})"
        for a in rt.store.list_actions(gate.model)
        if a.gate_id == gate.id
    ]
    return detail


@gates_app.command("show")
def show_gate(
    gate_id: GateArg,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """One gate: its policy, the decisions so far, who could still decide, what it did."""
    rt = runtime(catalog, inventory)
    gate = rt.store.get_gate(ids.gate_id(rt, gate_id))
    emit_object(gate_detail(rt, gate), as_json=as_json, title="Gate")


def _decide(
    gate_id: str,
    value: DecisionValue,
    as_person: str | None,
    reason: str,
    *,
    break_glass: bool,
    as_json: bool,
    catalog: CatalogOpt,
    inventory: InventoryOpt,
) -> None:
    from prodcontrol.control.gates import decisions

    if not reason.strip():
        raise UsageError(
            f'gates {value}: give --reason "..." (why you {value}; it is kept as evidence)'
        )
    rt = runtime(catalog, inventory)
    gate_id = ids.gate_id(rt, gate_id)
    actor = acting(
        rt,
        as_person,
        break_glass=break_glass,
        reason=reason,
        command=f"gates {value} {gate_id}",
        model=gate_model(rt, gate_id),
    )
    person = actor.person
    gate = decisions.decide(
        rt,
        gate_id,
        person=person,
        decision=value,
        channel="cli",
        reason=reason,
        credential=actor.credential,
    )
    detail = gate_detail(rt, gate)
    if as_json:
        emit_object(detail, as_json=True)
        return
    if gate.status == "pending":
        left = ", ".join(detail.get("could_approve", [])) or "nobody"
        console.print(
            f"[green]recorded[/green]: {person} {value}d gate {gate.id}; it needs "
            f"{gate.required_approvals} approvals and stays pending. Could still approve: {left}"
        )
        return
    did = "; ".join(detail["actions"]) or "no action"
    console.print(
        f"[green]recorded[/green]: gate {gate.id} is now [bold]{gate.status}[/bold] -> {did}"
    )


@gates_app.command("approve")
def approve(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    gate_id: GateArg,
    person: AsOpt = None,
    reason: Annotated[str, typer.Option("--reason", help="Why; kept as evidence (required).")] = "",
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Approve a gate as the person of PRODCONTROL_TOKEN (refused, exit 2, without the right)."""
    _decide(
        gate_id,
        "approve",
        person,
        reason,
        break_glass=break_glass,
        as_json=as_json,
        catalog=catalog,
        inventory=inventory,
    )


@gates_app.command("reject")
def reject(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    gate_id: GateArg,
    reason: ReasonOpt,
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Reject a gate as the token's person; one rejection closes it (on_reject action)."""
    _decide(
        gate_id,
        "reject",
        person,
        reason,
        break_glass=break_glass,
        as_json=as_json,
        catalog=catalog,
        inventory=inventory,
    )


# --------------------------------------------------------------------------- waivers


def _expiry(until: str | None, days: float | None) -> tuple[datetime | None, timedelta | None]:
    if (until is None) == (days is None):
        raise UsageError("give exactly one of --days N or --until YYYY-MM-DD")
    if days is not None:
        if days <= 0:
            raise UsageError(f"--days {days}: give a positive number of days")
        return None, timedelta(days=days)
    try:
        when = datetime.fromisoformat(str(until))
    except ValueError:
        raise UsageError(f"--until {until!r}: write a date as YYYY-MM-DD") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), None


def waiver_row(status: Any) -> dict[str, Any]:
    w = status.waiver
    return {
        "waiver": w.id,
        "model": w.model,
        "control": w.control_id,
        "state": status.state.upper() if status.state == "expiring" else status.state,
        "expires_at": _when(w.expires_at),
        "days_left": status.days_left,
        "approver": w.approver,
        "reason": w.reason,
        "finding": w.finding_id,
    }


@waivers_app.command("grant")
def grant(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    finding_id: Annotated[str, typer.Argument(help="The finding id (see `gates list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the finding is acceptable.")],
    person: AsOpt = None,
    days: Annotated[float | None, typer.Option("--days", help="Valid for N days.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Valid until YYYY-MM-DD.")] = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Accept a finding until an expiry within the tier's waiver_max (exception right needed)."""
    from prodcontrol.control.gates import waivers

    expires_at, valid_for = _expiry(until, days)
    rt = runtime(catalog, inventory)
    finding_id = ids.finding_id(rt, finding_id)
    actor = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"waivers grant {finding_id}",
        model=finding_model(rt, finding_id),
    )
    waiver = waivers.grant(
        rt,
        finding_id,
        approver=actor.person,
        reason=reason,
        expires_at=expires_at,
        valid_for=valid_for,
    )
    [status] = [s for s in waivers.list_waivers(rt, waiver.model) if s.waiver.id == waiver.id]
    emit_object(waiver_row(status), as_json=as_json, title="Waiver granted")


@waivers_app.command("list")
def list_waivers(  # noqa: PLR0917 - typer maps each parameter to an option
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include expired and revoked waivers.")
    ] = False,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Waivers, soonest expiry first; EXPIRING marks those that end within 7 days."""
    from prodcontrol.control.gates import waivers

    rt = runtime(catalog, inventory)
    rows = [waiver_row(s) for s in waivers.list_waivers(rt, model, include_inactive=show_all)]
    if not rows and not as_json:
        console.print("no active waivers" if not show_all else "no waivers")
        return
    if not as_json and not wide:
        shown = short_ids([r["waiver"] for r in rows])
        for row in rows:
            row["waiver"] = shown[row["waiver"]]
            row["until"] = (row["expires_at"] or "-")[:10]
    narrow = ["waiver", "model", "control", "state", "until"]
    emit(rows, as_json=as_json, title="Waivers", narrow=narrow, wide=wide)


@waivers_app.command("revoke")
def revoke(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    waiver_id: Annotated[str, typer.Argument(help="The waiver id (see `waivers list`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the waiver ends now.")],
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    as_json: JsonOpt = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """End a waiver now; its finding is open again."""
    from prodcontrol.control.gates import waivers

    rt = runtime(catalog, inventory)
    waiver_id = ids.waiver_id(rt, waiver_id)
    actor = acting(
        rt, person, break_glass=break_glass, reason=reason, command=f"waivers revoke {waiver_id}"
    )
    waiver = waivers.revoke(rt, waiver_id, by=actor.person, reason=reason)
    emit_object(waiver.model_dump(mode="json"), as_json=as_json, title="Waiver revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(gates_app, name="gates")
    app.add_typer(waivers_app, name="waivers")
