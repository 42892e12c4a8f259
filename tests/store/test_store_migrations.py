"""Migrations: apply from empty, apply again harmlessly, and agree with the table classes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from prodcontrol.adapters.store.migrate import (
    VERSION_TABLE,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from prodcontrol.adapters.store.tables import Base
from prodcontrol.errors import UsageError
from prodcontrol.evidence.chain import GENESIS

TABLES = {
    "pc_runs",
    "pc_verdicts",
    "pc_artifacts",
    "pc_findings",
    "pc_gates",
    "pc_decisions",
    "pc_waivers",
    "pc_actions",
    "pc_domain_events",
    "pc_escalations",
    "pc_notifications",
    "pc_delivery_attempts",
    "pc_events",
    "pc_chain_head",
    "pc_head_signatures",
    "pc_personal_tokens",
    "pc_seen_requests",
    "pc_decision_credentials",
    VERSION_TABLE,
}


def test_upgrade_from_empty_creates_every_table(database_url: str) -> None:
    assert current_revision(database_url) is None
    assert upgrade(database_url) == head_revision()
    engine = create_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        with engine.connect() as conn:
            assert conn.execute(text("SELECT seq, hash FROM pc_chain_head")).all() == [(0, GENESIS)]
    finally:
        engine.dispose()


def test_upgrade_twice_and_ensure_schema_are_harmless(database_url: str) -> None:
    first = upgrade(database_url)
    assert upgrade(database_url) == first
    assert ensure_schema(database_url) == first
    assert current_revision(database_url) == first


def test_ensure_schema_migrates_an_empty_database(database_url: str) -> None:
    assert ensure_schema(database_url) == head_revision()


def test_migration_matches_the_table_classes(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_a_revision_from_a_newer_prodcontrol_is_refused(database_url: str) -> None:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    finally:
        engine.dispose()
    try:
        upgrade(database_url)
    except UsageError as exc:
        assert "9999" in str(exc) and "newer prodcontrol" in str(exc)
    else:
        raise AssertionError("upgrade accepted an unknown revision")


def test_two_processes_migrating_at_once_take_turns(database_url: str) -> None:
    script = (
        "import sys; from prodcontrol.adapters.store.migrate import upgrade; "
        "print(upgrade(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, database_url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert [out.strip() for out, _ in outputs] == [head_revision(), head_revision()]


def test_threads_migrating_at_once_take_turns(database_url: str) -> None:
    barrier = threading.Barrier(2)
    results: list[str | BaseException] = []

    def migrate() -> None:
        barrier.wait()
        try:
            results.append(upgrade(database_url))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [head_revision(), head_revision()]
