"""The event log: generic entries, reading it back, and verifying it against the tables."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.tables import (
    HEAD_ID,
    ActionRow,
    ArtifactRow,
    Base,
    ChainHeadRow,
    DecisionRow,
    DeliveryAttemptRow,
    DomainEventRow,
    EscalationRow,
    EventRow,
    FindingRow,
    GateRow,
    HeadSignatureRow,
    NotificationRow,
    RunRow,
    VerdictRow,
    WaiverRow,
)
from prodcontrol.adapters.store.transaction import event_from_row, to_record
from prodcontrol.evidence.chain import (
    RecordKey,
    compare_records,
    latest_records,
    verify_chain,
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
    EvidenceReport,
    Finding,
    Gate,
    Notification,
    Verdict,
    Waiver,
)
from prodcontrol.evidence.retention import PURGE_KIND, chain_start
from prodcontrol.evidence.signing import HeadSignature, SigningKey
from prodcontrol.evidence.store_rules import check_free_payload

# subject_type in the log -> (table, record) of the rows it describes
SUBJECTS: dict[str, tuple[type[Base], type[BaseModel]]] = {
    "run": (RunRow, ControlRun),
    "verdict": (VerdictRow, Verdict),
    "artifact": (ArtifactRow, Artifact),
    "finding": (FindingRow, Finding),
    "gate": (GateRow, Gate),
    "decision": (DecisionRow, Decision),
    "waiver": (WaiverRow, Waiver),
    "action": (ActionRow, Action),
    "domain_event": (DomainEventRow, DomainEvent),
    "escalation": (EscalationRow, Escalation),
    "notification": (NotificationRow, Notification),
    "delivery_attempt": (DeliveryAttemptRow, DeliveryAttempt),
}
BATCH = 1000
MAX_PROBLEMS = 200


class LogMixin(StoreBase):
    """Generic events, the log, and evidence verification."""

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
        stmt = select(EventRow).where(EventRow.seq > after_seq).order_by(EventRow.seq)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as session:
            return [event_from_row(row) for row in session.scalars(stmt)]

    def chain_head(self) -> tuple[int, str]:
        with self._read() as session:
            return self._head(session)

    def latest_event(self, kind: str) -> Event | None:
        stmt = select(EventRow).where(EventRow.kind == kind).order_by(EventRow.seq.desc()).limit(1)
        with self._read() as session:
            row = session.scalars(stmt).first()
            return event_from_row(row) if row is not None else None

    def head_signatures(self, after_seq: int = 0) -> list[HeadSignature]:
        with self._read() as session:
            return self._signatures(session, after_seq)

    @staticmethod
    def _signatures(session: Session, after_seq: int = 0) -> list[HeadSignature]:
        stmt = (
            select(HeadSignatureRow)
            .where(HeadSignatureRow.seq > after_seq)
            .order_by(HeadSignatureRow.seq)
        )
        return [
            HeadSignature(
                seq=r.seq,
                hash=r.hash,
                key_id=r.key_id,
                signature=r.signature,
                from_seq=r.from_seq,
            )
            for r in session.scalars(stmt)
        ]

    def rotate_key(self, new: SigningKey) -> Event:
        """Chain ``new`` as the successor of the configured key, endorsed by it; sign with it."""
        with self._write() as tx:
            event = tx.rotate(new)
        self.signer = new
        return event

    @staticmethod
    def _head(session: Session) -> tuple[int, str]:
        head = session.get_one(ChainHeadRow, HEAD_ID)
        return head.seq, head.hash

    def verify(self) -> EvidenceReport:
        """Check the chain, then that every table row equals the newest record logged for it.

        Reads one consistent snapshot, so concurrent writers cannot cause false alarms.
        """
        with self._read(snapshot=True) as session:
            head = self._head(session)
            start = self._chain_start(session)
            chain = verify_chain(self._stream_events(session), expected_head=head, start=start)
            logged = _with_defaults(latest_records(self._stream_events(session)))
            rows = list(self._current_rows(session))
            signatures = self._signatures(session)
        problems = compare_records(logged, rows, SUBJECTS)
        return EvidenceReport(
            ok=chain.ok and not problems,
            chain=chain,
            rows_checked=len(rows),
            mismatches=problems[:MAX_PROBLEMS],
            start_seq=start[0],
            recorded_head=head,
            head_signatures=signatures,
        )

    def chain_start(self) -> tuple[int, str]:
        """The ``(seq, hash)`` the oldest remaining entry follows (genesis, or a recorded purge)."""
        with self._read() as session:
            return self._chain_start(session)

    @staticmethod
    def _chain_start(session: Session) -> tuple[int, str]:
        first = session.scalars(select(EventRow).order_by(EventRow.seq).limit(1)).first()
        purges = session.scalars(
            select(EventRow).where(EventRow.kind == PURGE_KIND).order_by(EventRow.seq.desc())
        )
        return chain_start(
            event_from_row(first) if first is not None else None,
            (event_from_row(row) for row in purges),
        )

    @staticmethod
    def _stream_events(session: Session) -> Iterator[Event]:
        stmt = select(EventRow).order_by(EventRow.seq).execution_options(yield_per=BATCH)
        for row in session.scalars(stmt):
            yield event_from_row(row)

    @staticmethod
    def _current_rows(session: Session) -> Iterator[tuple[RecordKey, dict[str, Any]]]:
        for subject_type, (row_cls, record_cls) in SUBJECTS.items():
            stmt = select(row_cls).execution_options(yield_per=BATCH)
            for row in session.scalars(stmt):
                record = to_record(row, record_cls)
                yield (subject_type, str(getattr(row, "id"))), record.model_dump(mode="json")  # noqa: B009


def _with_defaults(logged: dict[RecordKey, dict[str, Any]]) -> dict[RecordKey, dict[str, Any]]:
    """Records logged before a migration added a field with a default read with that default.

    A row written before ``0003`` gets the new column's default; its logged record never named
    the field, and still says the same thing.
    """
    for (subject_type, _), record in logged.items():
        cls = SUBJECTS.get(subject_type, (None, None))[1]
        if cls is None:
            continue
        for name, field in cls.model_fields.items():
            if name not in record and not field.is_required():
                record[name] = field.get_default(call_default_factory=True)
    return logged
