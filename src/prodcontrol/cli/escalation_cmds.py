"""``escalations list|ack|tick`` and ``outbox list|send``: owner chains and the message queue."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import typer

from prodcontrol.cli import ids
from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.identity_opts import AsOpt, BreakGlassOpt, acting
from prodcontrol.cli.output import console, emit, emit_object

escalations_app = typer.Typer(help="Escalation chains to the named owners.", no_args_is_help=True)
outbox_app = typer.Typer(
    help="Messages waiting to be sent, sent, and dead-lettered.", no_args_is_help=True
)


@escalations_app.command("list")
def list_escalations(
    status: Annotated[
        str | None, typer.Option("--status", help="active, acknowledged, resolved or exhausted.")
    ] = None,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Escalations with their step, next due time, who acknowledged, and SLA breaches."""
    from prodcontrol.engine import escalation as timing
    from prodcontrol.errors import UsageError

    rt = runtime(catalog, inventory)
    if status not in (None, "active", "acknowledged", "resolved", "exhausted"):
        raise UsageError(f"--status {status!r}: use active, acknowledged, resolved or exhausted")
    now = rt.clock.now()
    rows: list[dict[str, Any]] = []
    for esc in rt.store.list_escalations(status=status):  # type: ignore[arg-type]
        try:
            policy = rt.config.tier(rt.config.model(esc.model)).escalation
            end = esc.closed_at if esc.status in ("resolved", "exhausted") else None
            breached = timing.breaches(
                policy, esc.started_at, end or now, acknowledged_at=esc.acknowledged_at
            )
        except UsageError:
            breached = []
        rows.append(
            {
                "id": esc.id,
                "model": esc.model,
                "tier": esc.tier,
                "status": esc.status,
                "step": esc.step,
                "started_at": esc.started_at.isoformat(timespec="seconds"),
                "next_due_at": esc.next_due_at.isoformat(timespec="seconds")
                if esc.next_due_at
                else None,
                "acknowledged_by": esc.acknowledged_by,
                "sla_breached": breached,
                "finding_id": esc.finding_id,
            }
        )
    emit(rows, as_json=as_json, title="Escalations")


@escalations_app.command("ack")
def ack(  # noqa: PLR0917 - typer maps each parameter to an argument or option
    escalation_id: Annotated[
        str, typer.Argument(help="The escalation id (see `escalations list`).")
    ],
    person: AsOpt = None,
    break_glass: BreakGlassOpt = False,
    reason: Annotated[str, typer.Option("--reason", help="With --break-glass: why.")] = "",
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge: stop the chain; the gate (if any) stays open for a decision."""
    from prodcontrol.control.escalation import escalation

    rt = runtime(catalog, inventory)
    escalation_id = ids.escalation_id(rt, escalation_id)
    who = acting(
        rt,
        person,
        break_glass=break_glass,
        reason=reason,
        command=f"escalations ack {escalation_id}",
    ).person
    done = escalation.acknowledge(rt, escalation_id, who, "cli")
    emit_object(
        {
            "id": done.id,
            "status": done.status,
            "acknowledged_by": done.acknowledged_by,
            "acknowledged_at": done.acknowledged_at,
        },
        as_json=as_json,
        title="Escalation acknowledged",
    )


@escalations_app.command("tick")
def tick(
    catalog: CatalogOpt = None, inventory: InventoryOpt = None, as_json: JsonOpt = False
) -> None:
    """Advance overdue chains, send reminders, move past dead letters (run it every minute)."""
    from prodcontrol.control.escalation import escalation

    rt = runtime(catalog, inventory)
    emit_object(escalation.tick(rt).as_dict(), as_json=as_json, title="Escalation tick")


@outbox_app.command("list")
def list_outbox(
    status: Annotated[str | None, typer.Option("--status", help="pending, sent or dead.")] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Only dead letters.")] = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Messages in the outbox; dead letters show their last error."""
    from prodcontrol.errors import UsageError

    rt = runtime(catalog, inventory)
    wanted = "dead" if dead else status
    if wanted not in (None, "pending", "sent", "dead"):
        raise UsageError(f"--status {wanted!r}: use pending, sent or dead")
    rows = [
        {
            "id": n.id,
            "status": n.status,
            "recipient": ("@" if n.recipient_kind == "person" else "") + n.recipient,
            "model": n.payload.get("model"),
            "kind": n.payload.get("op") or n.payload.get("kind"),
            "attempts": n.attempts,
            "next_attempt_at": n.next_attempt_at.isoformat(timespec="seconds"),
            "last_error": n.last_error,
            "key": n.idempotency_key,
        }
        for n in rt.store.list_notifications(status=wanted)  # type: ignore[arg-type]
    ]
    emit(rows, as_json=as_json, title="Dead letters" if wanted == "dead" else "Outbox")


@outbox_app.command("send")
def send(  # noqa: PLR0917 - typer maps each option to a parameter
    loop: Annotated[bool, typer.Option("--loop", help="Keep sending until Ctrl-C.")] = False,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", min=1, help="Dead-letter after N failures.")
    ] = 5,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="Seconds between polls with --loop.")
    ] = 1.0,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what is due (Slack with a token; else print it and append it to the outbox file)."""
    from prodcontrol.adapters.slack import OutboxFileNotifier, SlackNotifier
    from prodcontrol.control.escalation.outbox import OutboxSender

    rt = runtime(catalog, inventory)
    notifier = rt.notifier
    if isinstance(notifier, OutboxFileNotifier) and not as_json:
        notifier.echo = lambda text: console.print(text, highlight=False, markup=False)
    if isinstance(notifier, SlackNotifier):
        notifier.check()
    sender = OutboxSender(rt.store, notifier, rt.clock, max_attempts=max_attempts)
    try:
        if loop:
            stop = threading.Event()
            try:
                report = sender.run(stop, poll_seconds=poll)
            except KeyboardInterrupt:
                stop.set()
                return
        else:
            report = sender.drain()
    finally:
        sender.close()
    dead = len(rt.store.list_notifications(status="dead"))
    emit_object(
        {
            "sent": report.sent,
            "already_sent": report.already_sent,
            "updated": report.updated,
            "retry_later": report.retried,
            "dead_lettered_now": len(report.dead),
            "dead_letters_total": dead,
            "outbox_file": str(rt.settings.outbox_file)
            if isinstance(notifier, OutboxFileNotifier)
            else None,
        },
        as_json=as_json,
        title="Outbox",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(escalations_app, name="escalations")
    app.add_typer(outbox_app, name="outbox")
