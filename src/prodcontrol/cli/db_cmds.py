"""``db upgrade``: apply the evidence store's migrations (the CLI also does it on first use)."""

from __future__ import annotations

import typer

from prodcontrol.cli.app import JsonOpt
from prodcontrol.cli.output import emit_object
from prodcontrol.settings import load_settings

db_app = typer.Typer(help="The evidence database.", no_args_is_help=True)


def redact(url: str) -> str:
    """A database URL without its password, for messages and tables."""
    from prodcontrol.adapters.store.engine import redact as redact_url

    return redact_url(url)


@db_app.command("upgrade")
def upgrade(as_json: JsonOpt = False) -> None:
    """Create or migrate the evidence database to the newest schema."""
    from prodcontrol.adapters.store.migrate import upgrade as run_upgrade

    settings = load_settings()
    settings.state_path.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    revision = run_upgrade(url)
    emit_object(
        {"database": redact(url), "revision": revision},
        as_json=as_json,
        title="Evidence database is up to date",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
