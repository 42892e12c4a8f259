"""The store fixtures, with a clock that ticks.

``store`` is the EvidenceStore contract: every test that takes it runs on the in-memory fake
(:class:`prodcontrol.testing.InMemoryEvidenceStore`), on SQLite and on PostgreSQL, and must
pass on all three. ``sql_store`` is the SQL adapter only (SQLite and PostgreSQL): for what only a
database has (raw SQL behind the store's back, purge, legacy formats, a second process).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from store_helpers import START

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.testing import InMemoryEvidenceStore


class TickingClock:
    """Moves one second every time it is read, so records written one after another sort."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=1)
            return self._now


@pytest.fixture
def clock() -> TickingClock:
    return TickingClock()


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, clock: TickingClock) -> Iterator[EvidenceStore]:
    """The contract: the in-memory fake, SQLite and PostgreSQL behave the same."""
    if request.param == "memory":
        yield InMemoryEvidenceStore(clock=clock)
        return
    url: str = request.getfixturevalue(f"{request.param}_url")
    upgrade(url)
    evidence = SqlEvidenceStore(url, clock=clock)
    try:
        yield evidence
    finally:
        evidence.close()


@pytest.fixture
def sql_store(database_url: str, clock: TickingClock) -> Iterator[SqlEvidenceStore]:
    """The SQL adapter on SQLite and on PostgreSQL, for what only a database has."""
    upgrade(database_url)
    evidence = SqlEvidenceStore(database_url, clock=clock)
    try:
        yield evidence
    finally:
        evidence.close()
