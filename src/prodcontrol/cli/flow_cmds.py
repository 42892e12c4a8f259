"""``prodcontrol run MODEL``, ``sweep``, ``deploy``: the Prefect flows from the command line.

Prefect is imported only when one of these commands runs, so the rest of the CLI stays fast
and works where Prefect is not installed. Without ``PREFECT_API_URL`` the flows run on Prefect's
embedded (ephemeral) API; with it, on that server, where the runs show in the UI.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from prodcontrol.catalog.types import CONTROLLED_STAGES
from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt
from prodcontrol.cli.output import console, emit, err_console
from prodcontrol.errors import UsageError

if TYPE_CHECKING:
    from prodcontrol.evidence.records import Gate
    from prodcontrol.orchestration.flows import ModelResult, SweepReport
    from prodcontrol.orchestration.runtimes import RuntimeRef
    from prodcontrol.runtime import Runtime

COLOURS = {
    "not_applicable": "dim",
    "pass": "green",
    "warn": "yellow",
    "fail": "red",
    "error": "bold red",
}


def _quiet_prefect() -> None:
    """Prefect's INFO logs would bury the tables, and nothing leaves the machine unasked.

    The user's own settings win."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the embedded API server starts in a subprocess; a busy machine needs more than 20 s
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


def _ref(catalog: Path | None, inventory: Path | None) -> RuntimeRef:
    from prodcontrol.orchestration.runtimes import RuntimeRef

    return RuntimeRef(
        catalog=str(catalog.resolve()) if catalog else None,
        inventory=str(inventory.resolve()) if inventory else None,
    )


def _in_background(work: Any, *args: Any, **kwargs: Any) -> tuple[ThreadPoolExecutor, Future[Any]]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prodcontrol-flow")
    return pool, pool.submit(work, *args, **kwargs)


# --------------------------------------------------------------------------- run


def run_model(
    model: Annotated[str, typer.Argument(help="Registered-model name from models.yaml.")],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="Wait for the gates the run opens to be decided (or expire)."
        ),
    ] = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run MODEL's tier control flow once on Prefect; open (and with --wait, wait on) its gates.

    Exit codes: 0 all pass or warn, 1 a control failed or a finding blocks, 2 usage or
    configuration error, 3 MLflow or a data source was unreachable.
    """
    _quiet_prefect()
    from prodcontrol.orchestration.flows import run_control
    from prodcontrol.orchestration.runtimes import resolve

    ref = _ref(catalog, inventory)
    rt = resolve(ref)
    entry = rt.config.model(model)
    _require_controlled(entry.name, entry.stage)
    if wait and not as_json:
        err_console.print(
            "the run waits on any gate it opens: decide from another terminal with "
            "[bold]prodcontrol gates approve|reject GATE --as PERSON[/bold], from Slack or the "
            "web page"
        )
    with err_console.status(f"running the {entry.tier}-tier controls of {model} on Prefect"):
        pool, future = _in_background(run_control, model=model, runtime=ref, wait_for_gates=wait)
        result: ModelResult = future.result()
        pool.shutdown()
    _show_model(rt, result, as_json=as_json)
    raise typer.Exit(result.exit_code)


def _require_controlled(model: str, stage: str) -> None:
    if stage not in CONTROLLED_STAGES:
        raise UsageError(
            f"model '{model}' is in stage {stage}; production controls run on "
            f"{' and '.join(sorted(CONTROLLED_STAGES))} models only"
        )


def _show_model(rt: Runtime, result: ModelResult, *, as_json: bool) -> None:
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    if result.status == "failed" or result.run_id is None:
        err_console.print(f"[red]{result.model}: the flow failed:[/red] {result.error}")
        return
    from prodcontrol.cli.check_cmd import show
    from prodcontrol.control.runs.checks import result_of

    show(result_of(rt, result.run_id), web_url=rt.settings.web_base_url)
    for gate_id in result.gates:
        _show_gate(rt.store.get_gate(gate_id))


def _show_gate(gate: Gate) -> None:
    if gate.status == "pending":
        console.print(
            f"gate [bold]{gate.id}[/bold] is pending ({gate.required_approvals} approval(s), due "
            f"{gate.due_at:%Y-%m-%d %H:%M %Z}): prodcontrol gates show {gate.id}",
            highlight=False,
        )
    else:
        console.print(f"gate {gate.id}: {gate.status}", highlight=False)


# --------------------------------------------------------------------------- sweep


def sweep(  # noqa: PLR0917 - typer maps each parameter to an option
    tier: Annotated[
        str | None, typer.Option("--tier", help="Only this tier (default: every tier).")
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option("--processes", min=0, help="Measurement worker processes (default: cores)."),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="Wait for the gates the sweep opens.")
    ] = False,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the controls of every pilot/production model due in this schedule slot, in parallel.

    A model already recorded in the current slot of its tier's cron is not run twice. One model's
    failure is reported in its row and never stops the others.
    """
    _quiet_prefect()
    from prodcontrol.orchestration.flows import run_sweep
    from prodcontrol.orchestration.runtimes import resolve

    ref = _ref(catalog, inventory)
    rt = resolve(ref)
    if tier is not None and tier not in rt.config.catalog.tiers:
        known = ", ".join(sorted(rt.config.catalog.tiers))
        raise UsageError(f"unknown tier '{tier}'; tiers in the catalog: {known}")
    models = [m.name for m in rt.config.controlled_models(tier)]
    started = rt.clock.now()
    pool, future = _in_background(run_sweep, tier, ref, processes=processes, wait_for_gates=wait)
    if as_json:
        report: SweepReport = future.result()
    else:
        report = _with_progress(rt, models, started, future)
    pool.shutdown()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _show_sweep(report)
    raise typer.Exit(report.exit_code)


def _with_progress(rt: Runtime, models: list[str], started: Any, future: Future[Any]) -> Any:
    """A bar over the models, advanced as their runs land in the evidence store."""
    wanted = set(models)
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"sweeping {len(models)} model(s)", total=len(models))
        while not done.wait(0.5):
            finished = {
                r.model
                for r in rt.store.list_runs(since=started)
                if r.model in wanted and r.status != "running"
            }
            bar.update(task, completed=len(finished))
        bar.update(task, completed=len(models))
    return future.result()


def _show_sweep(report: SweepReport) -> None:
    rows = []
    for r in report.results:
        worst = _worst(list(r.verdicts.values()))
        rows.append(
            {
                "model": r.model,
                "tier": r.tier,
                "status": r.status,
                "version": r.model_version,
                "verdict": f"[{COLOURS[worst]}]{worst}[/]" if worst else "-",
                "findings": r.findings,
                "blocking": r.blocking,
                "gates": _gate_counts(list(r.gate_status.values())),
                "exit": r.exit_code,
                "error": r.error,
            }
        )
    title = f"sweep of {report.tier or 'every'} tier"
    if report.slot:
        title += f", slot {report.slot}"
    emit(
        rows,
        as_json=False,
        title=title,
        columns=["model", "tier", "status", "version", "verdict", "findings", "blocking", "gates"]
        + (["error"] if any(r.error for r in report.results) else []),
    )
    failed = sum(r.status == "failed" for r in report.results)
    console.print(
        f"{len(report.results)} model(s), {failed} failed to run; Prefect flow run "
        f"{report.flow_run_id}; exit {report.exit_code}",
        highlight=False,
    )
    if any(s == "pending" for r in report.results for s in r.gate_status.values()):
        console.print("pending gates wait for a decision: prodcontrol gates list")


def _gate_counts(statuses: list[str]) -> str:
    """``2 pending, 1 approved``: the gates of a model at a glance (ids: prodcontrol gates list)."""
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    return ", ".join(f"{n} {s}" for s, n in counts.items()) or "-"


def _worst(verdicts: list[str]) -> str | None:
    order = ["not_applicable", "pass", "warn", "fail", "error"]
    return max(verdicts, key=order.index) if verdicts else None


# --------------------------------------------------------------------------- deploy


def deploy(  # noqa: PLR0917 - typer maps each parameter to an option
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Serve every deployment from this process (blocks)."),
    ] = False,
    work_pool: Annotated[
        str, typer.Option("--work-pool", help="Work pool for the deployments (made if missing).")
    ] = "prodcontrol",
    project_dir: Annotated[
        Path, typer.Option("--project-dir", help="Directory with flows/ that workers run.")
    ] = Path("."),
    shards: Annotated[
        int,
        typer.Option(
            "--shards",
            help="Split each tier's sweep into N flow runs that the pool's workers share.",
        ),
    ] = 1,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One deployment per tier on the tier's cron and timezone, plus the escalation ticker.

    Without --serve they go to a work pool on the Prefect server in PREFECT_API_URL (start
    workers with ``prefect worker start --pool prodcontrol``). With --serve this process runs
    them itself on the embedded default until Ctrl-C.
    """
    _quiet_prefect()
    from prodcontrol.orchestration import deploy as deployments
    from prodcontrol.orchestration.runtimes import resolve

    ref = _ref(catalog, inventory)
    rt = resolve(ref)
    specs = deployments.deployment_specs(rt, ref, shards=shards)
    rows = [
        {"deployment": s.name, "cron": s.cron, "timezone": s.timezone, "entrypoint": s.entrypoint}
        for s in specs
    ]
    if serve:
        emit(rows, as_json=as_json, title="serving (Ctrl-C to stop)")
        deployments.serve(specs)
        return
    if not (project_dir / "flows").is_dir():
        raise UsageError(
            f"{project_dir.resolve()} has no flows/ directory; run from the project root or pass "
            "--project-dir"
        )
    if not os.environ.get("PREFECT_API_URL") and not as_json:
        err_console.print(
            "[yellow]PREFECT_API_URL is not set:[/] the deployments go to the local Prefect "
            "database; start a server and a worker to run them, or use --serve"
        )
    deployments.deploy_to_pool(specs, work_pool, project_dir)
    emit(deployments.read_deployments(), as_json=as_json, title=f"deployments on {work_pool}")
    if not as_json:
        _say_what_workers_need(rt, work_pool)


def _say_what_workers_need(rt: Runtime, work_pool: str) -> None:
    from prodcontrol.orchestration.deployment_settings import database_label, withheld

    err_console.print(
        f"the deployments carry the settings (evidence in {database_label(rt.settings)}); "
        f"start workers with: prefect worker start --pool {work_pool}",
        highlight=False,
    )
    needed = withheld(rt.settings)
    if needed:
        err_console.print(
            "secrets are not stored in Prefect: give every worker "
            + ", ".join(needed)
            + " in its environment (or a Prefect Secret block that sets them)",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    app.command("run")(run_model)
    app.command("sweep")(sweep)
    app.command("deploy")(deploy)
