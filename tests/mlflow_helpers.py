"""A real ``mlflow server`` for tests, importable by name (``from mlflow_helpers import ...``).

It lives outside ``conftest.py`` because ``import conftest`` is ambiguous in a whole-suite run
(several folders have one), so a test module must not import from it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


class MlflowServer:
    """A real ``mlflow server`` (SQLite backend, local artifacts) on a free loopback port.

    ``stop()`` takes it down (for "MLflow down mid-test"); ``uri`` of the ``mlflow_uri`` fixture
    starts it again on the same port and database, so later tests see the same data.
    """

    def __init__(self, root: Path) -> None:
        import socket

        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        import sys

        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination",
            str(self.root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        # the job runner (huey consumers) is not needed and costs seconds at start-up
        env = os.environ | {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            # registry webhooks to a loopback `prodcontrol serve` (DESIGN §8), seen at once
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def wait_ready(self, timeout: float = 120.0) -> None:
        import time
        import urllib.request

        assert self.process is not None, "launch() the server first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"mlflow server exited with {self.process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        self.stop()
        pytest.fail(f"mlflow server did not answer at {self.uri} within {timeout:.0f} s")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Kill the server and its worker (one process group), as a crash would: connections
        are refused from then on. SQLite keeps what was committed; a restart sees it."""
        import signal

        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
