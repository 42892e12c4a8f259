"""What every part of the in-memory store shares: its tables, its log, its transactions.

See :mod:`prodcontrol.testing.store`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from pydantic import BaseModel

from prodcontrol.clock import Clock, SystemClock, ensure_utc
from prodcontrol.errors import StoreConflict
from prodcontrol.evidence.chain import GENESIS, next_entry
from prodcontrol.evidence.port import (
    RecordNotFound,
)
from prodcontrol.evidence.records import (
    Action,
    Artifact,
    ControlRun,
    Decision,
    DeliveryAttempt,
    DomainEvent,
    Escalation,
    Event,
    Finding,
    Gate,
    HeadSignature,
    Notification,
    Verdict,
    Waiver,
)
from prodcontrol.evidence.signing import (
    KEY_ADDED,
    KEY_SUBJECT,
    SigningKey,
    commit_signer,
    key_payload,
    sign_head,
)
from prodcontrol.evidence.store_rules import stored_values

R = TypeVar("R", bound=BaseModel)

# subject_type in the log -> the record its rows are (the SQL store's tables, one dict each)
SUBJECTS: dict[str, type[BaseModel]] = {
    "run": ControlRun,
    "verdict": Verdict,
    "artifact": Artifact,
    "finding": Finding,
    "gate": Gate,
    "decision": Decision,
    "waiver": Waiver,
    "action": Action,
    "domain_event": DomainEvent,
    "escalation": Escalation,
    "notification": Notification,
    "delivery_attempt": DeliveryAttempt,
}
# the references the database checks (its foreign keys): field -> subject it names
REFERENCES: dict[str, dict[str, str]] = {
    "verdict": {"run_id": "run"},
    "artifact": {"run_id": "run", "verdict_id": "verdict"},
    "finding": {"run_id": "run", "verdict_id": "verdict"},
    "gate": {"finding_id": "finding"},
    "decision": {"gate_id": "gate"},
    "waiver": {"finding_id": "finding"},
    "action": {"gate_id": "gate"},
    "domain_event": {"gate_id": "gate"},
    "escalation": {"finding_id": "finding", "gate_id": "gate"},
    "notification": {"escalation_id": "escalation", "gate_id": "gate", "finding_id": "finding"},
    "delivery_attempt": {"notification_id": "notification"},
}


def _stored(record: R) -> R:
    """The record as a database row gives it back: JSON columns hold their JSON-mode dump."""
    return type(record).model_validate(stored_values(record))


class _Tx:
    """The writes of one store call: rows and their chained events, under the store's lock."""

    def __init__(self, store: MemoryStoreBase) -> None:
        self.store = store
        self.now = ensure_utc(store.clock.now())
        self.start_seq = store._head()[0]
        self.replaces: str | None = None

    def insert(self, subject: str, record: R, verb: str, model: str | None, **context: Any) -> R:
        row = _stored(record)
        self._check_references(subject, row)
        self.store._rows[subject][str(getattr(row, "id"))] = row  # noqa: B009 - every row has one
        self.log(row, subject, verb, model, **context)
        return row

    def update(self, subject: str, record: R, verb: str, model: str | None, **context: Any) -> R:
        row = _stored(record)
        self.store._rows[subject][str(getattr(row, "id"))] = row  # noqa: B009
        self.log(row, subject, verb, model, **context)
        return row

    def log(
        self, record: BaseModel, subject: str, verb: str, model: str | None, **context: Any
    ) -> Event:
        subject_id = str(getattr(record, "id"))  # noqa: B009 - every stored record has an id
        payload = {"record": record.model_dump(mode="json"), **context}
        return self.append(f"{subject}.{verb}", subject, subject_id, model, payload)

    def append(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        head = self.store._head()
        event, _ = next_entry(head, self.now, kind, subject_type, subject_id, model, payload)
        self.store._events.append(event)
        return event

    def _check_references(self, subject: str, row: BaseModel) -> None:
        for field, target in REFERENCES.get(subject, {}).items():
            value = getattr(row, field)
            if value is not None and value not in self.store._rows[target]:
                raise StoreConflict(
                    f"the evidence store refused the write: {subject}.{field} {value!r} names "
                    f"no {target}"
                )

    def finish(self) -> None:
        """Sign the head this call leaves, as the SQL store does (one signature per commit)."""
        store = self.store
        if store._head()[0] == self.start_seq:
            return
        signed_by = store._signatures[-1].key_id if store._signatures else None
        signer = commit_signer(signed_by, store.signer, self.replaces)
        if signer is None:
            return
        if signed_by is None:
            self.append(KEY_ADDED, KEY_SUBJECT, signer.key_id, None, key_payload(signer, None))
        seq, digest = store._head()
        store._signatures.append(sign_head(signer, seq, digest, self.start_seq))


class MemoryStoreBase:
    """The tables, the log and the signatures, and how a call gets its transaction."""

    def __init__(self, clock: Clock | None = None, signer: SigningKey | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.signer = signer
        self._lock = threading.RLock()
        self._rows: dict[str, dict[str, Any]] = {subject: {} for subject in SUBJECTS}
        self._events: list[Event] = []
        self._signatures: list[HeadSignature] = []

    def __repr__(self) -> str:
        return f"InMemoryEvidenceStore({len(self._events)} events)"

    def close(self) -> None:
        """Nothing to release (the SQL store disposes its connection pool here)."""

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[_Tx]:
        with self._lock:
            rows = {subject: dict(table) for subject, table in self._rows.items()}
            events, signatures = len(self._events), len(self._signatures)
            try:
                tx = _Tx(self)
                yield tx
                tx.finish()
            except BaseException:
                self._rows = rows
                del self._events[events:]
                del self._signatures[signatures:]
                raise

    def _head(self) -> tuple[int, str]:
        if not self._events:
            return 0, GENESIS
        last = self._events[-1]
        return last.seq, last.hash

    def _get(self, subject: str, kind: str, record_id: str) -> Any:
        row = self._rows[subject].get(record_id)
        if row is None:
            raise RecordNotFound(kind, record_id)
        return row

    def _all(self, subject: str) -> list[Any]:
        with self._lock:
            return list(self._rows[subject].values())
