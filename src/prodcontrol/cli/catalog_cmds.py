"""``validate``, ``catalog show`` and ``models list``: what is declared, and whether it holds."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.readiness import missing_owner_roles, readiness_label
from prodcontrol.catalog.types import format_duration
from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, WideOpt, runtime
from prodcontrol.cli.output import console, emit, emit_object
from prodcontrol.control.runs.source_check import check_sources
from prodcontrol.errors import ConfigError

catalog_app = typer.Typer(help="Inspect the control catalog.", no_args_is_help=True)
models_app = typer.Typer(help="Inspect the model inventory.", no_args_is_help=True)


def validate(
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="Also load SQL and MLflow data sources and check their columns (local files "
            "are always checked).",
        ),
    ] = False,
) -> None:
    """Check the catalog, the inventory and the declared data; print each problem as
    file:line: field: message (exit 2)."""
    rt = runtime(catalog, inventory)
    config = rt.config
    sources = check_sources(
        config, rt.datasets, rt.metrics if probe else None, probe=probe, now=rt.clock.now()
    )
    if sources.problems:
        raise ConfigError(sources.problems)
    summary = summarize(config)
    summary["catalog"] = str(config.catalog.directory)
    summary["inventory"] = str(config.inventory.directory)
    summary["data_sources"] = {
        "local_files_checked": sources.checked,
        "probed": sources.probed,
        "not_probed": sources.not_probed,
    }
    if as_json:
        emit_object(summary, as_json=True)
        return
    console.print(
        f"[green]valid[/green]: {summary['controls']} controls, {summary['tiers']} tiers, "
        f"{summary['frameworks']} frameworks ({summary['clauses']} clauses), "
        f"{summary['models']} models, {summary['people']} people"
    )
    console.print(f"catalog:   {summary['catalog']}\ninventory: {summary['inventory']}")
    data = f"data:      {sources.checked} local file(s) checked"
    if probe:
        data += f", {sources.probed} other source(s) probed"
    elif sources.not_probed:
        data += f"; {sources.not_probed} SQL/MLflow source(s) not loaded (validate --probe)"
    console.print(data, highlight=False)


def summarize(config: Config) -> dict[str, Any]:
    return {
        "controls": len(config.catalog.controls),
        "tiers": len(config.catalog.tiers),
        "frameworks": len(config.catalog.frameworks),
        "clauses": len(config.catalog.clause_ids()),
        "models": len(config.inventory.models),
        "people": len(config.inventory.people),
    }


def model_rows(config: Config) -> list[dict[str, Any]]:
    rows = []
    for model in config.inventory.models.values():
        owners: dict[str, str] = dict(model.owners.assigned())
        rows.append(
            {
                "model": model.name,
                "tier": model.tier,
                "stage": model.stage,
                "serving_alias": model.serving_alias,
                "owners": {role: owners.get(role, "MISSING") for role in _roles()},
                "missing_roles": missing_owner_roles(model),
                "readiness": readiness_label(model),
            }
        )
    return rows


def _roles() -> tuple[str, ...]:
    from prodcontrol.catalog.types import OWNER_ROLES

    return OWNER_ROLES


@models_app.command("list")
def models_list(
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Models with tier, stage, serving alias, owners by role, and ownership readiness."""
    rows = model_rows(runtime(catalog, inventory).config)
    if as_json:
        emit(rows, as_json=True)
        return
    for row in rows:
        named = [person for person in row["owners"].values() if person != "MISSING"]
        people = ", ".join(dict.fromkeys(named))
        row["owners"] = f"{len(named)}/5" + (f": {people}" if named and wide else "")
    emit(
        rows,
        as_json=False,
        title="Models",
        columns=["model", "tier", "stage", "serving_alias", "owners", "readiness"],
        narrow=["model", "tier", "stage", "owners", "readiness"],
        wide=wide,
    )


def control_rows(config: Config) -> list[dict[str, Any]]:
    return [
        {
            "control": c.id,
            "kind": c.kind,
            "severity": c.severity,
            "warn": c.thresholds.warn,
            "fail": c.thresholds.fail,
            "direction": c.thresholds.direction,
            "unit": c.thresholds.unit,
            "clauses": c.clauses,
            "tiers": [t for t, policy in config.catalog.tiers.items() if c.id in policy.controls],
        }
        for c in config.catalog.controls.values()
    ]


def tier_rows(config: Config) -> list[dict[str, Any]]:
    rows = []
    for tier_id, tier in config.catalog.tiers.items():
        chain = [
            f"{step.role or step.channel} +{format_duration(step.after)}"
            for step in tier.escalation.steps
        ]
        rows.append(
            {
                "tier": tier_id,
                "schedule": tier.schedule,
                "controls": len(tier.controls),
                "gate": tier.gate.mode,
                "approvals": tier.gate.required_approvals,
                "separation_of_duties": tier.gate.separation_of_duties,
                "fail_closed": tier.fail_closed,
                "on_timeout": f"{tier.gate.on_timeout} after {format_duration(tier.gate.timeout)}",
                "escalation": chain,
                "max_rows": tier.sampling.max_rows,
            }
        )
    return rows


@catalog_app.command("show")
def catalog_show(
    catalog: CatalogOpt = None, inventory: InventoryOpt = None, as_json: JsonOpt = False
) -> None:
    """Controls with thresholds and clause mapping, and tier policies."""
    config = runtime(catalog, inventory).config
    controls, tiers = control_rows(config), tier_rows(config)
    if as_json:
        emit_object({"controls": controls, "tiers": tiers}, as_json=True)
        return
    emit(
        controls,
        as_json=False,
        title="Controls",
        columns=["control", "kind", "severity", "warn", "fail", "unit", "clauses", "tiers"],
    )
    for row in tiers:
        row["escalation"] = "\n".join(row["escalation"])
    emit(tiers, as_json=False, title="Tiers")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(models_app, name="models")
