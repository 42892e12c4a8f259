"""SqlEvidenceStore: the EvidenceStore port over SQLAlchemy 2, on SQLite or PostgreSQL.

Usage::

    from prodcontrol.adapters.store.migrate import ensure_schema
    from prodcontrol.adapters.store.sql import SqlEvidenceStore

    ensure_schema(url)                     # once per process; `prodcontrol db upgrade` does it too
    store = SqlEvidenceStore(url, clock=clock)
    run = store.start_run("credit-risk", "7", tier="high", trigger="prefect")

The parts live in their own modules (runs, gates, events, outbox, log, purge); this class puts them
together. Constructing it does not connect: the first call does, and a database that cannot
be reached raises UnreachableError.
"""

from __future__ import annotations

from prodcontrol.adapters.store.engine import redact
from prodcontrol.adapters.store.events import DomainEventsMixin
from prodcontrol.adapters.store.gates import GatesMixin
from prodcontrol.adapters.store.log import LogMixin
from prodcontrol.adapters.store.outbox import OutboxMixin
from prodcontrol.adapters.store.purge import PurgeMixin
from prodcontrol.adapters.store.runs import RunsMixin


class SqlEvidenceStore(
    RunsMixin, GatesMixin, DomainEventsMixin, OutboxMixin, LogMixin, PurgeMixin
):
    """Evidence in a SQL database: one transaction per call, every row chained in the log."""

    def __repr__(self) -> str:
        return f"SqlEvidenceStore({redact(self.url)!r})"


__all__ = ["SqlEvidenceStore"]
