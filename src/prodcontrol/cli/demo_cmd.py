"""``prodcontrol demo``: the end-to-end walk-through that ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path

import typer

from prodcontrol.cli.catalog_cmds import model_rows, summarize, tier_rows
from prodcontrol.cli.db_cmds import redact
from prodcontrol.cli.output import console, emit
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings


def demo(
    inventory: Path = typer.Option(Path("examples"), "--inventory", help="Inventory to use."),
) -> None:
    """Validate the bundled catalog and examples, prepare the evidence DB, and show them."""
    settings = load_settings(inventory_dir=inventory)
    rt = Runtime(settings)
    console.rule("[bold]1. Validate the control catalog and the inventory")
    config = rt.config
    counts = summarize(config)
    console.print(
        f"catalog {settings.resolved_catalog_dir()} and inventory {inventory}: valid "
        f"({counts['controls']} controls, {counts['tiers']} tiers, {counts['clauses']} framework "
        f"clauses, {counts['models']} models, {counts['people']} people)"
    )
    console.rule("[bold]2. Tier policies")
    tiers = tier_rows(config)
    for row in tiers:
        row["escalation"] = "\n".join(row["escalation"])
    emit(
        tiers,
        as_json=False,
        columns=[
            "tier",
            "schedule",
            "controls",
            "gate",
            "approvals",
            "fail_closed",
            "on_timeout",
            "escalation",
        ],
    )
    console.rule("[bold]3. Models, owners and readiness")
    rows = model_rows(config)
    for row in rows:
        row["owners"] = "\n".join(f"{k}: {v}" for k, v in row["owners"].items())
    emit(rows, as_json=False, columns=["model", "tier", "stage", "owners", "readiness"])
    console.rule("[bold]4. Evidence store")
    store = rt.store
    seq, head = store.chain_head()
    console.print(
        f"evidence database ready at {redact(settings.resolved_database_url)} "
        f"(chain head #{seq} {head[:12]}…)"
    )
    console.rule("[bold]What to try next")
    console.print(
        "  .venv/bin/prodcontrol validate --inventory examples\n"
        "  .venv/bin/prodcontrol models list --inventory examples --json\n"
        "  .venv/bin/prodcontrol catalog show\n"
        "  make test"
    )


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
