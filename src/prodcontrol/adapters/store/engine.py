"""Engines for the evidence database, and turning "cannot connect" into UnreachableError.

SQLite: WAL (readers never block the writer), foreign keys on, a busy timeout, and writes that
start with ``BEGIN IMMEDIATE`` so two writers queue for the lock at the start of their
transaction instead of failing half-way (the pysqlite recipe from the SQLAlchemy docs: the
driver's own transaction handling is turned off and SQLAlchemy emits BEGIN itself).

The switch to WAL is made once per database file, under :func:`first_use_lock` (a lock file next
to the database), never on every connection: ``PRAGMA journal_mode=WAL`` upgrades a read lock to
a write lock, and SQLite answers "database is locked" at once, without waiting for the busy
timeout, when another connection holds a lock then. Two processes (a worker and ``serve``) or two
threads that open a fresh database together therefore take turns instead of crashing each other.
PostgreSQL: a short connect timeout and pre-ping, so a dead server is reported in seconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
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
FIRST_USE_TIMEOUT_S = 120
"""How long a process waits for another one to finish migrating the same SQLite file."""


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


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for other databases and in-memory or URI SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


def first_use_lock(url: str) -> AbstractContextManager[object]:
    """Held while a SQLite file is switched to WAL or migrated; nothing for other databases.

    A lock file beside the database (``evidence.db.lock``): it orders threads and processes
    alike. PostgreSQL migrations take an advisory lock instead (``migrations/env.py``).
    """
    path = sqlite_file(url)
    if path is None:
        return nullcontext()
    _make_folder(url, path)
    # one lock object per file and process, re-entrant within a thread (a migration opens
    # engines while it holds the lock); each thread still waits for the others
    lock = FileLock(
        f"{path}.lock", timeout=FIRST_USE_TIMEOUT_S, is_singleton=True, poll_interval=0.01
    )
    return _held(lock, url)


@contextmanager
def _held(lock: FileLock, url: str) -> Iterator[object]:
    try:
        lock.acquire()
    except OSError as exc:
        raise UnreachableError(
            "database", _safe(url), f"cannot create {lock.lock_file}: {exc.strerror}", _hint(url)
        ) from None
    except Timeout:
        raise UnreachableError(
            "database",
            _safe(url),
            f"another process has held {lock.lock_file} for {FIRST_USE_TIMEOUT_S} s",
            "Another prodcontrol process is migrating this database or hangs; wait for it or "
            "stop it, then try again",
        ) from None
    try:
        yield lock
    finally:
        lock.release()


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_file(url)
    if path is not None:
        _make_folder(url, path)
        _switch_to_wal(url, path)
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _make_folder(url: str, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnreachableError(
            "database", _safe(url), f"cannot create {path.parent}: {exc.strerror}", _hint(url)
        ) from None


def _switch_to_wal(url: str, path: Path) -> None:
    """Put the file in WAL mode once (SQLite keeps the mode in the file), one process at a time."""
    if _is_wal(path):
        return
    with first_use_lock(url):
        try:
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise UnreachableError("database", url, str(exc), _hint(url)) from None
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise UnreachableError("database", url, str(exc), _hint(url)) from None
        finally:
            connection.close()


def _is_wal(path: Path) -> bool:
    """Whether the file is in WAL mode, asked through SQLite itself.

    Never by reading the file with ``open()``: closing any descriptor of a database file drops
    every POSIX lock this process holds on it, the locks of its other SQLite connections
    included, and a writer in another process can then corrupt what they read
    (sqlite.org/howtocorrupt.html, 2.2). SQLite's own connections share one lock per file and
    are safe to open and close. Reading ``journal_mode`` takes no write lock.
    """
    if not path.is_file():
        return False
    try:
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    except sqlite3.Error:
        return False
    finally:
        connection.close()
    return str(mode).lower() == "wal"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
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
