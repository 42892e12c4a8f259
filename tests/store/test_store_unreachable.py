"""A database that cannot be reached is an UnreachableError that says what to check."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcontrol.adapters.store.migrate import current_revision, ensure_schema, upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.errors import EXIT_UNREACHABLE, ConfigError, UnreachableError

DEAD_PG = "postgresql+psycopg://auditor:s3cret@127.0.0.1:1/evidence"


def test_postgres_on_a_closed_port(tmp_path: Path) -> None:
    for attempt in (upgrade, ensure_schema, current_revision):
        with pytest.raises(UnreachableError) as caught:
            attempt(DEAD_PG)
        error = caught.value
        assert error.system == "database" and error.exit_code == EXIT_UNREACHABLE
        assert "127.0.0.1:1" in str(error) and "s3cret" not in str(error)
        assert "PRODCONTROL_DATABASE_URL" in str(error)


def test_store_calls_on_a_closed_port() -> None:
    store = SqlEvidenceStore(DEAD_PG)
    try:
        with pytest.raises(UnreachableError, match=r"database at \S*127\.0\.0\.1:1\S* is un"):
            store.start_run("m", "1", "low", "cli")
        with pytest.raises(UnreachableError):
            store.list_runs()
    finally:
        store.close()


def test_sqlite_in_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(UnreachableError, match="cannot create"):
        upgrade(f"sqlite:///{blocker / 'evidence.db'}")


def test_a_url_with_an_unknown_driver_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="database_url: nosuchdb://user:\\*\\*\\*@host/db is not"):
        upgrade("nosuchdb://user:pw@host/db")
