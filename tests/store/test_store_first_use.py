"""First use of a SQLite evidence database by several threads and processes at once.

A worker and ``prodcontrol serve`` (or two threads of one sweep) that start on a fresh state
directory all switch the file to WAL and migrate it. SQLite answers "database is locked" at once,
without waiting, when two connections race for that switch, so CI went red by chance. These tests
repeat the race many times, with busy processes beside it to make the scheduling unfair.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from prodcontrol.adapters.store.engine import make_engine
from prodcontrol.adapters.store.migrate import head_revision, upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore

WAL_ROUNDS = 200
"""Bare ``PRAGMA journal_mode=WAL`` from 8 threads on a fresh file failed ~1 round in 150 here."""
ROUNDS = 8
THREADS = 4
PROCESSES = 3

# each process says it is ready, waits for the go file, then migrates and writes to every
# database in turn, as a worker and `prodcontrol serve` starting together would
WORKER = """
import os, sys, time
from pathlib import Path
from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
ready, go, urls = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
ready.touch()
while not go.exists():
    time.sleep(0.005)
for url in urls:
    upgrade(url)
    store = SqlEvidenceStore(url)
    store.record_event("first-use", "process", str(os.getpid()), None, {})
    store.close()
"""


def first_use(url: str, who: str) -> str:
    """What a process does when it meets the database: migrate, then write."""
    revision = upgrade(url)
    store = SqlEvidenceStore(url)
    try:
        store.record_event("first-use", "thread", who, None, {})
    finally:
        store.close()
    return revision


def assert_intact(url: str, writers: int) -> None:
    store = SqlEvidenceStore(url)
    try:
        assert store.verify().ok
        assert len([e for e in store.events() if e.kind == "first-use"]) == writers
    finally:
        store.close()


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """One busy-looping process per core for the duration of the test."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def together(count: int, work: Callable[[int], object]) -> list[object]:
    """``work(n)`` in ``count`` threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(count)
    results: list[object] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            results.append(work(n))
        except Exception as exc:  # collected and reported by the caller
            results.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == count, "a thread hung"
    return results


def journal_mode(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            mode: str = conn.execute(text("PRAGMA journal_mode")).scalar_one()
            return mode
    finally:
        engine.dispose()


@pytest.mark.usefixtures("cpu_load")
def test_threads_switching_a_fresh_file_to_wal_take_turns_every_time(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(WAL_ROUNDS):
        url = f"sqlite:///{tmp_path / f'wal-{round_}.db'}"
        modes = together(8, lambda _n, url=url: journal_mode(url))
        failures += [f"round {round_}: {mode!r}" for mode in modes if mode != "wal"]
    assert failures == []


@pytest.mark.usefixtures("cpu_load")
def test_threads_opening_a_fresh_database_take_turns_every_time(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'round-{round_}' / 'evidence.db'}"
        results = together(THREADS, lambda n, url=url: first_use(url, str(n)))
        failures += [f"round {round_}: {r!r}" for r in results if r != head_revision()]
        if not failures:
            assert_intact(url, THREADS)
    assert failures == []


@pytest.mark.usefixtures("cpu_load")
def test_processes_opening_fresh_databases_take_turns_every_time(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / f'db-{n}' / 'evidence.db'}" for n in range(ROUNDS)]
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(PROCESSES)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(flag), str(go), *urls],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready) and time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            break  # one died while importing: its stderr is reported below
        time.sleep(0.01)
    go.touch()
    outputs = [proc.communicate(timeout=240) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * PROCESSES, [err for _, err in outputs]
    for url in urls:
        assert upgrade(url) == head_revision()
        assert_intact(url, PROCESSES)


WRITE_AND_LEAVE = """
import sys
from prodcontrol.adapters.store.sql import SqlEvidenceStore
store = SqlEvidenceStore(sys.argv[1])
store.record_event("cli", "process", "writer", None, {})
store.close()
"""


def test_opening_another_store_keeps_this_process_s_hold_on_the_database(
    tmp_path: Path,
) -> None:
    """Opening a second store in a process must not drop the first one's hold on the file.

    Closing any Python file handle on the database file drops every POSIX lock of the process,
    SQLite's included (sqlite.org/howtocorrupt.html, 2.2). A writer in another process (the CLI)
    then believes it is the last connection when it closes, checkpoints and deletes the WAL
    and its index under this process's open connections, whose next reads said "database disk
    image is malformed" (an Airflow trigger that opens a store on each poll, beside the CLI).
    """
    path = tmp_path / "evidence.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    reader = SqlEvidenceStore(url)
    try:
        reader.list_gates()  # an open connection of this process, as a long-lived reader's
        SqlEvidenceStore(url).close()  # a second store of this process meets the same file
        subprocess.run([sys.executable, "-c", WRITE_AND_LEAVE, url], check=True, timeout=120)
        assert Path(f"{path}-wal").exists()  # the writer saw it was not alone
        assert reader.latest_event("cli") is not None
    finally:
        reader.close()
