"""Engines for the evidence database, and turning "cannot connect" into UnreachableError.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and writes that
start with ``BEGIN IMMEDIATE`` so two writers queue for the lock at the start of their
transaction instead of failing half-way (the pysqlite recipe from the SQLAlchemy docs: the
driver's own transaction handling is turned off and SQLAlchemy emits BEGIN itself).
PostgreSQL: a short connect timeout and pre-ping, so a dead server is reported in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)

from prodcontrol.errors import ConfigError, Problem, UnreachableError

WRITE_OPTION = "prodcontrol_write"
BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 5


def redact(url: str) -> str:
    """The URL without its password, fit for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> Engine:
    """An engine configured for the evidence store's transaction discipline.

    A URL SQLAlchemy cannot read, or whose driver is not installed, is a configuration error.
    """
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(
            [
                Problem(
                    "PRODCONTROL_DATABASE_URL or prodcontrol.toml",
                    0,
                    "database_url",
                    f"{_safe(url)} is not a database URL prodcontrol can use ({exc}); "
                    "write it like "
                    "sqlite:////path/evidence.db or postgresql+psycopg://user@host:5432/db",
                )
            ]
        ) from None


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnreachableError(
                "database", url, f"cannot create {folder}: {exc.strerror}", _hint(url)
            ) from None
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine, marked so that its transactions take the write lock when they begin."""
    return engine.execution_options(**{WRITE_OPTION: True})


@contextmanager
def unreachable_as_error(url: str) -> Iterator[None]:
    """Report a database that cannot be reached as UnreachableError, without a traceback.

    Only connection failures are translated; a constraint violation or a bad query is a bug
    or a conflict and keeps its own type.
    """
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        if not _is_connection_failure(exc):
            raise
        raise UnreachableError("database", _safe(url), _first_line(exc), _hint(url)) from None


def _is_connection_failure(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    text = str(exc.orig).lower()
    markers = (
        "connection",
        "connect",
        "unable to open database",
        "could not translate host",
        "timeout expired",
        "server closed",
        "no route",
        "name or service not known",
    )
    return any(marker in text for marker in markers)


def _first_line(exc: DBAPIError) -> str:
    lines = [line.strip() for line in str(exc.orig).splitlines() if line.strip()]
    return lines[0] if lines else type(exc.orig).__name__


def _safe(url: str) -> str:
    try:
        return redact(url)
    except Exception:  # an unparsable URL: show only its scheme, it may hold a password
        return url.split(":", 1)[0] + "://…"


def _hint(url: str) -> str:
    if url.startswith("sqlite"):
        return "Check that the state directory exists and is writable"
    return (
        "Check PRODCONTROL_DATABASE_URL (host, port, database, user) and that the server "
        "is running and accepts connections from this host"
    )
