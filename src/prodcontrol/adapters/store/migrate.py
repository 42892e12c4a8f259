"""Apply the evidence store's Alembic migrations, programmatically.

The migrations ship inside the package (``migrations/`` next to this file), so an installed
wheel can create and upgrade its database without an alembic.ini or a source checkout.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from prodcontrol.adapters.store.engine import (
    first_use_lock,
    make_engine,
    redact,
    unreachable_as_error,
    writer,
)
from prodcontrol.errors import UsageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "pc_schema_version"
# Alembic keeps the running migration in module globals: one migration per process at a time.
# Across processes, the lock file beside a SQLite database (engine.first_use_lock) or the
# advisory lock taken in migrations/env.py on PostgreSQL orders them.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An in-memory Alembic config pointing at the packaged migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of prodcontrol knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS}"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = make_engine(url)
    try:
        with unreachable_as_error(url), engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()
    finally:
        engine.dispose()


def upgrade(url: str) -> str:
    """Migrate the database to the newest schema (idempotent) and return its revision.

    Threads and processes that migrate the same database at once take turns: the first one
    migrates, the others find it done.
    """
    with _ALEMBIC_LOCK, first_use_lock(url):
        _refuse_unknown_revision(url, current_revision(url))
        engine = make_engine(url)
        try:
            with unreachable_as_error(url), writer(engine).begin() as connection:
                command.upgrade(alembic_config(connection), "head")
        finally:
            engine.dispose()
        revision = current_revision(url)
    assert revision is not None
    return revision


def ensure_schema(url: str) -> str:
    """What the CLI calls on first use: upgrade only when the database is behind."""
    revision = current_revision(url)
    if revision == head_revision():
        return revision
    return upgrade(url)


def _refuse_unknown_revision(url: str, revision: str | None) -> None:
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    if revision not in {rev.revision for rev in script.walk_revisions()}:
        raise UsageError(
            f"the evidence database at {redact(url)} is at schema revision {revision!r}, which "
            "this version of prodcontrol does not know: it was migrated by a newer prodcontrol; "
            "upgrade prodcontrol instead of pointing an older one at it"
        )
