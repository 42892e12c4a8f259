"""``prodcontrol init --from-mlflow NAME --tier T``: scaffold a models.yaml entry from MLflow."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt
from prodcontrol.cli.output import err_console
from prodcontrol.errors import UsageError


def init(
    from_mlflow: Annotated[
        str,
        typer.Option("--from-mlflow", help="Registered-model name in MLflow to scaffold from."),
    ],
    tier: Annotated[str, typer.Option("--tier", help="Risk tier from the catalog's tiers.yaml.")],
    append: Annotated[
        bool,
        typer.Option("--append", help="Append the entry to <inventory>/models.yaml."),
    ] = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Print a models.yaml entry for an MLflow registered model: versions, serving alias, logged
    metrics (the baseline), logged datasets (the data), and placeholders (owners, review date,
    use case) that `prodcontrol validate` reports until they are filled in."""
    from prodcontrol.catalog.loader import load_catalog_files
    from prodcontrol.catalog.suggest import did_you_mean
    from prodcontrol.clock import SystemClock
    from prodcontrol.control.lifecycle.scaffold import read_registered_model, render_entry
    from prodcontrol.settings import load_settings

    settings = load_settings(catalog_dir=catalog, inventory_dir=inventory)
    loaded, _, _ = load_catalog_files(settings.resolved_catalog_dir())
    tiers = sorted(loaded.tiers) if loaded else []
    if tiers and tier not in tiers:
        raise UsageError(
            f"unknown tier '{tier}'{did_you_mean(tier, tiers)}; the catalog's tiers: "
            + ", ".join(tiers)
        )
    info = read_registered_model(settings.resolved_tracking_uri, from_mlflow)
    entry = render_entry(info, tier, today=SystemClock().now().date())
    if not append:
        typer.echo(entry, nl=False)
        return
    path = settings.inventory_dir / "models.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not existing.strip():
        existing = "models:\n"
    elif not existing.endswith("\n"):
        existing += "\n"
    path.write_text(existing + "\n" + entry, encoding="utf-8")
    err_console.print(
        f"appended '{from_mlflow}' to {path}; fill in the TODOs, then run prodcontrol validate",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("init")(init)
