"""One write transaction: rows and the chained events that describe them, committed together.

The transaction takes the chain head first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite
the ``BEGIN IMMEDIATE`` that started it already holds the database's write lock), so appends
from concurrent writers are ordered and no two get the same ``seq``. Taking it first, before
any other row, also gives every writer the same lock order: no deadlocks.

With a signing key, the transaction ends by signing the head it leaves (one signature per
commit, not per entry: measured in bench/evidence_bench.py). The first signed commit of a store
first chains the key itself (``evidence.key_added``); a store that is signed refuses writes
from a process without its key, or with another one, so a misconfigured worker fails loudly
instead of leaving an unsigned tail that verify would report as tampering.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from prodcontrol.adapters.store.tables import (
    HEAD_ID,
    Base,
    ChainHeadRow,
    EventRow,
    HeadSignatureRow,
)
from prodcontrol.errors import UsageError
from prodcontrol.evidence.chain import next_entry
from prodcontrol.evidence.records import Event
from prodcontrol.evidence.signing import (
    KEY_ADDED,
    KEY_ROTATED,
    KEY_SUBJECT,
    SigningKey,
    commit_signer,
    key_payload,
    sign_head,
)
from prodcontrol.evidence.store_rules import leased, stored_values

R = TypeVar("R", bound=BaseModel)
T = TypeVar("T", bound=Base)


def to_record(row: Base, cls: type[R]) -> R:
    return cls.model_validate(row, from_attributes=True)


def set_fields(row: Base, changes: Mapping[str, Any]) -> None:
    """Set the fields a store rule changes (:mod:`prodcontrol.evidence.store_rules`) on a row."""
    for name, value in changes.items():
        setattr(row, name, value)


def lease(
    tx: WriteTx, stmt: Select[tuple[T]], record_cls: type[R], subject_type: str, until: datetime
) -> list[R]:
    """Lease the rows ``stmt`` selects (due ones) until ``until``, each logged ``applying``.

    The select and the updates run in the caller's write transaction, which holds the chain
    head's lock (every writer takes it first), so two claimers never lease the same row.
    """
    claimed = []
    for row in tx.session.scalars(stmt).all():
        set_fields(row, leased(until))
        tx.session.flush()
        record = to_record(row, record_cls)
        tx.log_record(record, subject_type, "applying", getattr(record, "model", None))
        claimed.append(record)
    return claimed


def event_from_row(row: EventRow) -> Event:
    return Event(
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        model=row.model,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
        format=row.format,
    )


def latest_key_id(session: Session) -> str | None:
    """The key that signed the newest signed head (None: the store was never signed)."""
    stmt = select(HeadSignatureRow.key_id).order_by(HeadSignatureRow.seq.desc()).limit(1)
    return session.scalars(stmt).first()


class WriteTx:
    """Collects the writes of one store call; the caller's ``with`` block commits or rolls back."""

    def __init__(self, session: Session, now: datetime, signer: SigningKey | None = None) -> None:
        self.session = session
        self.now = now
        self.signer = signer
        self._replaces: str | None = None
        self._head = session.execute(
            select(ChainHeadRow).where(ChainHeadRow.id == HEAD_ID).with_for_update()
        ).scalar_one()
        self._start_seq = self._head.seq

    def insert(
        self,
        row_cls: type[Base],
        record: R,
        subject_type: str,
        verb: str,
        model: str | None,
        **context: Any,
    ) -> R:
        """Write ``record`` as a new row of ``row_cls`` and log it."""
        self.session.add(row_cls(**stored_values(record)))
        self.session.flush()
        self.log_record(record, subject_type, verb, model, **context)
        return record

    def log_record(
        self, record: BaseModel, subject_type: str, verb: str, model: str | None, **context: Any
    ) -> Event:
        """Append the event for a row just written: the full record, plus why (``context``)."""
        subject_id = str(getattr(record, "id"))  # noqa: B009 - every stored record has an id
        payload = {"record": record.model_dump(mode="json"), **context}
        return self.append(f"{subject_type}.{verb}", subject_type, subject_id, model, payload)

    def append(
        self,
        kind: str,
        subject_type: str,
        subject_id: str,
        model: str | None,
        payload: dict[str, Any],
    ) -> Event:
        """Chain one entry after the current head."""
        head = (self._head.seq, self._head.hash)
        event, text = next_entry(head, self.now, kind, subject_type, subject_id, model, payload)
        self.session.add(EventRow(**event.model_dump(exclude={"payload"}), payload=text))
        self._head.seq, self._head.hash = event.seq, event.hash
        return event

    def rotate(self, new: SigningKey) -> Event:
        """Chain ``new`` as the key that replaces the current one, endorsed by it."""
        if self.signer is None:
            raise UsageError(
                "rotating the evidence key needs the current key: set evidence_signing_key to "
                "it and pass the new one"
            )
        event = self.append(
            KEY_ROTATED, KEY_SUBJECT, new.key_id, None, key_payload(new, self.signer)
        )
        self._replaces, self.signer = self.signer.key_id, new
        return event

    def finish(self) -> None:
        """Write the events, the new head and its signature; the caller's transaction commits."""
        self.session.flush()
        if self._head.seq == self._start_seq:
            return
        signed_by = latest_key_id(self.session)
        signer = commit_signer(signed_by, self.signer, self._replaces)
        if signer is None:
            return
        if signed_by is None:
            self.append(KEY_ADDED, KEY_SUBJECT, signer.key_id, None, key_payload(signer, None))
        signature = sign_head(signer, self._head.seq, self._head.hash, self._start_seq)
        self.session.add(HeadSignatureRow(**signature.model_dump(), signed_at=self.now))
        self.session.flush()
