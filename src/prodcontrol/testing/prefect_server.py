"""A real ``prefect server start`` and ``prefect worker start``, as a team runs them.

For the integration test of deployments and the worker round-trip benchmark (like
:mod:`prodcontrol.testing.slack_server`, test infrastructure that ships so both can use it).

The server has its own PREFECT_HOME (SQLite) on a free loopback port; its scheduler loops every
second so a cron deployment gets its runs at once; the worker polls every second. Both log to a
file; :meth:`PrefectServer.tracebacks` is what the server logged as errors (a scheduler that fails
on every loop logs a traceback each time, which is how prefect 3.8.8 with SQLAlchemy 2.1 looked).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
PREFECT = BIN / "prefect"
SERVER_ENV = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1",
    # the server's SQLite busy timeout (default 10 s): on a loaded 2-core machine its own
    # writers wait longer than that and log "database is locked" tracebacks
    "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_ENABLED": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}
WORKER_ENV = {
    "PREFECT_WORKER_QUERY_SECONDS": "1",
    "PREFECT_WORKER_PREFETCH_SECONDS": "5",
    "PREFECT_LOGGING_LEVEL": "INFO",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """The environment of a fresh shell: no PRODCONTROL_* and no PREFECT_* from this session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRODCONTROL_", "PREFECT_"))}
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


class Process:
    """A command in its own process group, its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                command,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)


class PrefectServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.home = root / "server-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.process: Process | None = None

    def start(self, timeout: float = 180.0) -> None:
        env = clean_env(self.home) | SERVER_ENV
        command = [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = Process(command, env, self.root, self.root / "server.log")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                raise RuntimeError(f"prefect server exited:\n{self.process.text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"prefect server did not answer at {self.api_url} in {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log_text(self) -> str:
        return self.process.text() if self.process else ""

    def tracebacks(self) -> list[str]:
        """Every traceback the server logged, with the line after it (the exception)."""
        lines = self.log_text().splitlines()
        found = []
        for n, line in enumerate(lines):
            if not line.startswith("Traceback (most recent call last)"):
                continue
            end = next(  # the exception: the first line after the frames not indented
                (m for m in range(n + 1, len(lines)) if lines[m] and not lines[m][0].isspace()),
                len(lines) - 1,
            )
            frames, exception = "\n".join(lines[n:end]), "\n".join(lines[end : end + 2])
            found.append(f"{frames[-1000:]}\n{exception[:500]}")
        return found

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST ``body`` (or GET without one) to the REST API; the JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def worker(
        self,
        pool: str,
        cwd: Path,
        home: Path,
        extra_env: dict[str, str] | None = None,
        *,
        limit: int | None = None,
        name: str | None = None,
    ) -> Process:
        """``prefect worker start --pool POOL`` started from ``cwd`` with a bare environment;
        ``limit``: at most that many flow runs at once (``--limit``)."""
        env = clean_env(home, self.api_url) | WORKER_ENV | (extra_env or {})
        command = [str(PREFECT), "worker", "start", "--pool", pool, "--type", "process"]
        command += ["--limit", str(limit)] if limit is not None else []
        command += ["--name", name] if name is not None else []
        log = cwd / f"worker-{name or pool}.log"
        return Process(command, env, cwd, log)

    def flow_runs(self, deployment_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.api(
            "/flow_runs/filter",
            {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200},
        )
        return runs
