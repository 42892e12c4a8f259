"""An in-memory :class:`~prodcontrol.evidence.port.EvidenceStore`, for unit tests and embedders.

It keeps what the SQL store keeps, the same way: every write is one transaction (all of it or
none of it: a call that fails half way restores the tables, the log and the signatures as they
were), every row written is logged as a chained event with the full record, the keys the
database enforces are enforced here too (one pending finding gate per model version, one chain
per lead finding, one decision per person per gate, unique idempotency keys, references to rows
that exist), and ``verify`` checks the chain and every row against its newest event. The store
contract tests (``tests/store``) run against it, SQLite and PostgreSQL alike. Its parts live
beside it like the SQL store's: ``store_base`` (tables, log, transactions), ``store_runs``,
``store_gates``, ``store_outbox``.

What it does not do: survive the process, be shared by two processes, or purge (retention is a
property of the database, tested on SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

from prodcontrol.evidence.chain import (
    compare_records,
    latest_records,
    verify_chain,
)
from prodcontrol.evidence.records import (
    Event,
    EvidenceReport,
    HeadSignature,
)
from prodcontrol.evidence.retention import PURGE_KIND, chain_start
from prodcontrol.evidence.store_rules import check_free_payload
from prodcontrol.testing.store_base import (
    SUBJECTS,
)
from prodcontrol.testing.store_runs import RunsPart


class InMemoryEvidenceStore(RunsPart):
    """Evidence in process memory: one lock, one transaction per call, every row chained."""

    # ------------------------------------------------------------------ the event log

    def record_event(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        check_free_payload(payload)
        with self._write() as tx:
            return tx.append(kind, subject_type, subject_id, model, payload)

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        with self._lock:
            found = [e for e in self._events if e.seq > after_seq]
        return found[:limit] if limit is not None else found

    def chain_head(self) -> tuple[int, str]:
        with self._lock:
            return self._head()

    def latest_event(self, kind: str) -> Event | None:
        with self._lock:
            return next((e for e in reversed(self._events) if e.kind == kind), None)

    def head_signatures(self, after_seq: int = 0) -> list[HeadSignature]:
        with self._lock:
            return [s for s in self._signatures if s.seq > after_seq]

    def verify(self) -> EvidenceReport:
        """Check the chain, then that every row equals the newest record logged for it."""
        with self._lock:
            events = list(self._events)
            head = self._head()
            rows = [
                ((subject, row_id), row.model_dump(mode="json"))
                for subject, table in self._rows.items()
                for row_id, row in table.items()
            ]
            signatures = list(self._signatures)
        purges = [e for e in reversed(events) if e.kind == PURGE_KIND]
        start = chain_start(events[0] if events else None, purges)
        chain = verify_chain(events, expected_head=head, start=start)
        problems = compare_records(latest_records(events), rows, SUBJECTS)
        return EvidenceReport(
            ok=chain.ok and not problems,
            chain=chain,
            rows_checked=len(rows),
            mismatches=problems[:200],
            start_seq=start[0],
            recorded_head=head,
            head_signatures=signatures,
        )


__all__ = ["InMemoryEvidenceStore"]
