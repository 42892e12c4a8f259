"""Session fixtures for the Airflow provider's tests: an Airflow home, a real MLflow server.

Airflow reads its configuration when first imported, so the environment is set here, at import
time, before any test module imports Airflow: a throw-away ``AIRFLOW_HOME`` with a SQLite
metadata DB, the DAGs folder pointing at ``examples/`` (so ``dag.test()`` runs the shipped
example DAGs), and prodcontrol's inventory, state and evidence DB in the same temp dir.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROVIDER = HERE.parent
REPO = PROVIDER.parents[1]
EXAMPLES = PROVIDER / "examples"

HOME = Path(tempfile.mkdtemp(prefix="prodcontrol-airflow-tests-"))
AIRFLOW_USERS = ("emeka", "dana", "chen", "gustav", "bruno", "stranger")
INVENTORY = HOME / "inventory"
os.environ.update(
    {
        "AIRFLOW_HOME": str(HOME / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow' / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PRODCONTROL_INVENTORY_DIR": str(INVENTORY),
        "PRODCONTROL_STATE_DIR": str(HOME / "state"),
        "PRODCONTROL_DATABASE_URL": f"sqlite:///{HOME / 'evidence.db'}",
        "PRODCONTROL_CONFIG": str(HOME / "prodcontrol.toml"),  # none: env and defaults only
        # the HITL tests answer as these Airflow users (simple auth manager, ids = people ids)
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:admin" for u in AIRFLOW_USERS),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(HOME / "passwords.json"),
    }
)
(HOME / "passwords.json").write_text(json.dumps({u: f"pw-{u}" for u in AIRFLOW_USERS}))
for name in [n for n in os.environ if n.startswith("PRODCONTROL_") and n.endswith("_URI")]:
    del os.environ[name]
shutil.copytree(REPO / "examples", INVENTORY)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's metadata DB, migrated once per session (SQLite, a few seconds)."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        timeout=240,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[str]:
    """A real ``mlflow server`` on a free loopback port, SQLite backend, local artifacts.

    Also defines the Airflow connection ``prodcontrol_mlflow`` (as ``AIRFLOW_CONN_*``, the
    environment secrets backend) pointing at it, as a deployment would.
    """
    port = free_port()
    root = HOME / "mlflow"
    root.mkdir()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        os.environ["AIRFLOW_CONN_PRODCONTROL_MLFLOW"] = url
        yield url
    finally:
        os.environ.pop("AIRFLOW_CONN_PRODCONTROL_MLFLOW", None)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
