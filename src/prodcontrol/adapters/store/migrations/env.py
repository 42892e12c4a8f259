"""Alembic environment for the evidence store, run programmatically by ``migrate.py``.

The caller hands over an open connection in ``config.attributes["connection"]`` (no alembic.ini,
no URL in a config file where a password could leak). On PostgreSQL a transaction-scoped
advisory lock makes two processes that migrate at once take turns; on SQLite the write
transaction's ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from prodcontrol.adapters.store.tables import Base

VERSION_TABLE = "pc_schema_version"
# Any fixed 64-bit number works; this one spells "prodctl" in ASCII.
PG_LOCK_KEY = 0x70726F6463746C


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "run migrations through prodcontrol (`prodcontrol db upgrade`), not the alembic CLI"
        )
    run_migrations(connection)


main()
