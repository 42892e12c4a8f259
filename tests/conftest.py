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

from mlflow_helpers import MlflowServer
from prodcontrol.testing.prefect_server import PREFECT as PREFECT_CLI
from prodcontrol.testing.prefect_server import PrefectServer
from prodcontrol.testing.slack_server import LocalSlackServer

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


# --------------------------------------------------------------------------- local Slack (issue 6)


@pytest.fixture(scope="session")
def slack_session() -> Iterator[LocalSlackServer]:
    """One local Slack Web API server for the whole session (loopback, free port)."""
    with LocalSlackServer() as server:
        yield server


@pytest.fixture
def slack_server(slack_session: LocalSlackServer) -> LocalSlackServer:
    """The session's Slack server, with messages, counts and faults forgotten."""
    slack_session.reset()
    return slack_session


# --------------------------------------------------------------------------- Prefect (issue 5)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect test harness (temporary API server and database) for the whole session.

    Yields the API URL, for subprocesses that must reach the same server. Prefect's home is a
    temporary directory and its logs are quiet; about 30 ms per trivial task, so keep flows small.
    """
    home = tmp_path_factory.mktemp("prefect-home")
    quiet = {
        "PREFECT_HOME": str(home),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    saved = {key: os.environ.get(key) for key in quiet}
    os.environ.update(quiet)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    try:
        with prefect_test_harness(server_startup_timeout=60):
            yield str(PREFECT_API_URL.value())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium for Playwright (no browser download). Missing: skipped, unless
    ``PRODCONTROL_REQUIRE_CHROMIUM=1`` makes its absence a failure (CI sets it)."""
    if CHROMIUM.is_file():
        return str(CHROMIUM)
    reason = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    if os.environ.get("PRODCONTROL_REQUIRE_CHROMIUM") == "1":
        pytest.fail(
            f"Chromium is required (PRODCONTROL_REQUIRE_CHROMIUM=1): {reason}", pytrace=False
        )
    pytest.skip(f"{reason}; set PRODCONTROL_REQUIRE_CHROMIUM=1 to make this a failure")


# --------------------------------------------------------------------------- MLflow (issue 4)


_MLFLOW_SERVERS: list[MlflowServer] = []


@pytest.fixture(scope="session", autouse=True)
def _mlflow_prestart(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Launch the MLflow server at session start when a collected test needs it.

    It takes 10-30 s to answer (imports and migrations); launched early, it starts while the
    tests before the first MLflow test run.
    """
    if any("mlflow_server" in getattr(i, "fixturenames", ()) for i in request.session.items):
        server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
        server.launch()
        _MLFLOW_SERVERS.append(server)
    try:
        yield
    finally:
        while _MLFLOW_SERVERS:
            _MLFLOW_SERVERS.pop().stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """The session's MLflow server; a test may ``stop()`` it, ``mlflow_uri`` restarts it."""
    if _MLFLOW_SERVERS:
        server = _MLFLOW_SERVERS[0]
        server.wait_ready()
    else:
        server = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_uri(mlflow_server: MlflowServer) -> str:
    """The tracking URI of the running session server (started again if a test stopped it)."""
    if not mlflow_server.running:
        mlflow_server.start()
    return mlflow_server.uri


@pytest.fixture(scope="session")
def _mlflow_examples(mlflow_server: MlflowServer) -> None:
    """Register the example inventory's models once per session (``seed_mlflow``)."""
    from prodcontrol.catalog.validate import load_config
    from prodcontrol.testing.seed import seed_mlflow

    if not mlflow_server.running:
        mlflow_server.start()
    root = Path(__file__).resolve().parents[1]
    seed_mlflow(mlflow_server.uri, load_config(root / "control_catalog", root / "examples"))


@pytest.fixture
def seeded_mlflow(mlflow_server: MlflowServer, _mlflow_examples: None) -> str:
    """The running session server with the example models (churn, credit, fraud) registered."""
    if not mlflow_server.running:
        mlflow_server.start()
    return mlflow_server.uri


# ------------------------------------------------------------------------- real Prefect (issue 13)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """One real ``prefect server start`` (own PREFECT_HOME, SQLite, loopback) per session.

    Missing or not starting: skipped, unless ``PRODCONTROL_REQUIRE_PREFECT_SERVER=1`` makes it a
    failure (CI sets it).
    """
    server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
    problem = None
    if not PREFECT_CLI.is_file():
        problem = f"{PREFECT_CLI} is not installed (pip install -e '.[prefect]')"
    else:
        try:
            server.start()
        except RuntimeError as exc:
            problem = str(exc)
    if problem is not None:
        if os.environ.get("PRODCONTROL_REQUIRE_PREFECT_SERVER") == "1":
            pytest.fail(
                f"a real Prefect server is required (PRODCONTROL_REQUIRE_PREFECT_SERVER=1): "
                f"{problem}",
                pytrace=False,
            )
        pytest.skip(f"{problem}; set PRODCONTROL_REQUIRE_PREFECT_SERVER=1 to make this a failure")
    try:
        yield server
    finally:
        server.stop()
