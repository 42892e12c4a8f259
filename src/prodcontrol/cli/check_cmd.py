"""``prodcontrol check MODEL``: run the model's tier controls once, without a scheduler."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from prodcontrol.adapters.evidently_snapshot import SNAPSHOT_SUFFIX
from prodcontrol.catalog.types import CONTROLLED_STAGES
from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, WideOpt, runtime
from prodcontrol.cli.output import console, emit, err_console, verdict_label
from prodcontrol.control.runs.checks import CheckResult, VerdictRow, run_checks
from prodcontrol.errors import UsageError

COLOURS = {
    "not_applicable": "dim",
    "pass": "green",
    "warn": "yellow",
    "fail": "red",
    "error": "bold red",
}


def check(
    model: Annotated[str, typer.Argument(help="Registered-model name from models.yaml.")],
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Run MODEL's tier controls once and record them as evidence.

    Exit codes: 0 all pass or warn, 1 a control failed or could not run (or a finding blocks),
    2 usage or configuration error, 3 MLflow or a data source was unreachable.
    """
    rt = runtime(catalog, inventory)
    entry = rt.config.model(model)
    if entry.stage not in CONTROLLED_STAGES:
        raise UsageError(
            f"model '{model}' is in stage {entry.stage}; production controls run on "
            f"{' and '.join(sorted(CONTROLLED_STAGES))} models only"
        )
    steps = len(rt.config.controls_for(entry)) + 2
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(f"checking {model}", total=steps)

        def step(message: str) -> None:
            bar.update(task, advance=1, description=message)

        result = run_checks(rt, model, trigger="cli", progress=step)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        show(result, wide=wide, web_url=rt.settings.web_base_url)
    raise typer.Exit(result.exit_code)


def show(result: CheckResult, *, wide: bool = False, web_url: str | None = None) -> None:
    """The verdicts at 80 columns: control, verdict, value, limits; the reasons that are not just
    the numbers (errors, not applicable) below the table. ``wide``: every column. ``web_url``:
    where the evidence browser is, which renders the run report from its stored snapshot."""
    rows = [
        {
            "control": v.control,
            "verdict": f"[{COLOURS[v.verdict]}]{verdict_label(v.verdict)}[/]",
            "value": "-" if v.value is None else f"{v.value:.4g}",
            "warn/fail": _limits(v),
            "threshold": v.threshold,
            "artifact": _short(v.artifact),
            "reason": v.reason,
        }
        for v in result.verdicts
    ]
    emit(
        rows,
        as_json=False,
        title=f"{result.model} version {result.version} ({result.tier} tier)",
        columns=["control", "verdict", "value", "threshold", "artifact", "reason"],
        narrow=["control", "verdict", "value", "warn/fail"],
        wide=wide,
    )
    if not wide:
        _why(result)
    if web_url and any(p.endswith(SNAPSHOT_SUFFIX) for v in result.verdicts for p in v.artifacts):
        console.print(f"report page: {web_url.rstrip('/')}/runs/{result.run_id}", highlight=False)
    blocking = [f.control for f in result.findings if f.blocking]
    console.print(
        f"run {result.run_id}: [{COLOURS[result.verdict]}]{result.verdict}[/], "
        f"{len(result.findings)} finding(s)"
        + (f", blocking: {', '.join(blocking)}" if blocking else "")
        + f"; exit {result.exit_code}",
        highlight=False,
    )
    if result.mlflow_run_id:
        console.print(f"written back to MLflow run {result.mlflow_run_id}", highlight=False)
    if result.writeback_error:
        err_console.print(
            f"[yellow]MLflow write-back failed (recorded as an event):[/] {result.writeback_error}",
            highlight=False,
        )


def _limits(verdict: VerdictRow) -> str:
    """``0.02/0.05``: warn and fail limits; ``<=`` marks a lower-is-worse control."""
    mark = "<=" if verdict.direction == "lower_is_worse" else ""
    parts = [f"{mark}{x:g}" for x in (verdict.warn, verdict.fail) if x is not None]
    return "/".join(parts) if verdict.warn is not None else f"-/{parts[0]}" if parts else "-"


def _why(result: CheckResult) -> None:
    """Reasons that say more than the numbers, one per line, wrapped at the terminal's width."""
    for v in result.verdicts:
        if v.verdict in ("error", "not_applicable"):
            console.print(f"[bold]{v.control}[/]: {v.reason}", highlight=False)
    reports = sorted({os.path.dirname(p) for v in result.verdicts for p in v.artifacts})
    if reports:
        console.print(f"reports: {_short(reports[0])}", highlight=False, overflow="fold")


def _short(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return relative if not relative.startswith("../..") else path


def register(app: typer.Typer) -> None:
    app.command("check")(check)
