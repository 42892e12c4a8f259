"""The ``store`` fixture: a migrated SqlEvidenceStore on each backend, with a clock that ticks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from store_helpers import START

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore


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


@pytest.fixture
def store(database_url: str, clock: TickingClock) -> Iterator[SqlEvidenceStore]:
    upgrade(database_url)
    evidence = SqlEvidenceStore(database_url, clock=clock)
    try:
        yield evidence
    finally:
        evidence.close()
