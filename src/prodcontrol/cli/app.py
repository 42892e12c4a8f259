"""The Typer app, its global options, and the one place errors become exit codes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from prodcontrol import __version__
from prodcontrol.cli.output import err_console, problem_lines
from prodcontrol.errors import EXIT_CONFIG, EXIT_OK, ConfigError, ProdControlError
from prodcontrol.runtime import Runtime

app = typer.Typer(
    name="prodcontrol",
    help="Production controls for ML models: tiered checks, human gates, escalation, evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

CatalogOpt = Annotated[
    Path | None,
    typer.Option("--catalog", help="Control catalog directory (default: the bundled catalog)."),
]
InventoryOpt = Annotated[
    Path | None,
    typer.Option("--inventory", help="Directory with models.yaml and people.yaml."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WideOpt = Annotated[
    bool,
    typer.Option("--wide", help="Every column, full ids and paths (else tables fit 80 columns)."),
]


def runtime(catalog: Path | None = None, inventory: Path | None = None) -> Runtime:
    return Runtime.from_options(catalog=catalog, inventory=inventory)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"prodcontrol {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Production controls for ML models."""


def run(argv: list[str]) -> int:
    """Run the CLI and return its exit code; our own errors print as messages, not tracebacks."""
    try:
        result = app(args=argv, prog_name="prodcontrol", standalone_mode=False)
    except ConfigError as exc:
        problem_lines([str(p) for p in exc.problems])
        err_console.print(f"[red]{len(exc.problems)} problem(s); nothing was changed.[/red]")
        return EXIT_CONFIG
    except ProdControlError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return EXIT_CONFIG
    except click.exceptions.Abort:
        err_console.print("aborted")
        return EXIT_CONFIG
    # with standalone_mode off, click returns typer.Exit's code instead of raising it
    return result if isinstance(result, int) else EXIT_OK
