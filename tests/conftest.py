"""Fixtures shared by every test folder: databases on SQLite and on PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (database ``test``, user ``postgres``, trust auth),
each in a schema of its own so tests can run in parallel. When the server is not there they
are skipped, unless ``PRODCONTROL_REQUIRE_POSTGRES=1`` makes its absence a failure (CI sets it).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

PG_HOST, PG_PORT, PG_DB, PG_USER = "127.0.0.1", 5432, "test", "postgres"
PG_BASE_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{PG_DB}"
PG_SKIP_REASON = (
    f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT} "
    "(set PRODCONTROL_REQUIRE_POSTGRES=1 to make this a failure)"
)


def _pg_connect(autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        dbname=PG_DB,
        user=PG_USER,
        connect_timeout=3,
        autocommit=autocommit,
    )


@functools.cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None; asked once per test session."""
    try:
        with _pg_connect() as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def require_postgres() -> None:
    """Skip (or, under PRODCONTROL_REQUIRE_POSTGRES=1, fail) when PostgreSQL is not there."""
    problem = postgres_problem()
    if problem is None:
        return
    if os.environ.get("PRODCONTROL_REQUIRE_POSTGRES") == "1":
        pytest.fail(
            f"PostgreSQL is required (PRODCONTROL_REQUIRE_POSTGRES=1) but not reachable "
            f"at {PG_HOST}:{PG_PORT}: {problem}",
            pytrace=False,
        )
    pytest.skip(PG_SKIP_REASON)


def pg_schema_url(schema: str) -> str:
    """A URL whose connections use ``schema`` first (libpq ``options=-csearch_path=...``)."""
    return f"{PG_BASE_URL}?options={quote(f'-csearch_path={schema}', safe='')}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'evidence.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema for this test only; dropped afterwards."""
    require_postgres()
    schema = f"t_{uuid.uuid4().hex}"
    with _pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield pg_schema_url(schema)
    finally:
        with _pg_connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on PostgreSQL."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url
