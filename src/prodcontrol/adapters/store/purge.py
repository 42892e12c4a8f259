"""Purging evidence older than the retention period, as one recorded, chained transaction.

The purge removes the prefix of the log written before a date, and every row whose newest entry
is in that prefix. A row that newer evidence still refers to (an old finding a recent waiver
names, say) is kept and logged again as ``<type>.retained``, so the table check still finds an
entry for it. Last comes one ``evidence.purged`` entry with what was removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from prodcontrol.adapters.store.base import StoreBase
from prodcontrol.adapters.store.log import SUBJECTS
from prodcontrol.adapters.store.tables import Base, EventRow, HeadSignatureRow
from prodcontrol.adapters.store.transaction import WriteTx, event_from_row, to_record
from prodcontrol.clock import ensure_utc
from prodcontrol.errors import UsageError
from prodcontrol.evidence.anchor import Anchor
from prodcontrol.evidence.retention import (
    PURGE_KIND,
    PURGE_SUBJECT,
    PurgeReport,
    check_purge_allowed,
    purge_payload,
)
from prodcontrol.evidence.signatures import key_entries
from prodcontrol.evidence.signing import KEY_KINDS

# children before parents: a row's kept-ness is final once every type referring to it is done
ORDER = (
    "domain_event",
    "delivery_attempt",
    "notification",
    "escalation",
    "decision",
    "action",
    "waiver",
    "gate",
    "finding",
    "artifact",
    "verdict",
    "run",
)
# (child type, column, parent type) for every foreign key between evidence tables
REFERENCES = (
    ("domain_event", "gate_id", "gate"),
    ("delivery_attempt", "notification_id", "notification"),
    ("notification", "escalation_id", "escalation"),
    ("notification", "gate_id", "gate"),
    ("notification", "finding_id", "finding"),
    ("escalation", "finding_id", "finding"),
    ("escalation", "gate_id", "gate"),
    ("decision", "gate_id", "gate"),
    ("action", "gate_id", "gate"),
    ("waiver", "finding_id", "finding"),
    ("gate", "finding_id", "finding"),
    ("finding", "run_id", "run"),
    ("finding", "verdict_id", "verdict"),
    ("artifact", "run_id", "run"),
    ("artifact", "verdict_id", "verdict"),
    ("verdict", "run_id", "run"),
)

Rows = dict[str, dict[str, Base]]


class PurgeMixin(StoreBase):
    """``purge(before)``: delete evidence older than a date, never inside the retention period."""

    def purge(
        self,
        before: datetime,
        *,
        retention_days: int,
        by: str,
        anchors: Sequence[Anchor] | None = None,
    ) -> PurgeReport:
        """Remove the log before ``before``; ``anchors`` are what the sinks hold (None: no sink
        is configured), one of which must cover the last removed entry."""
        before = ensure_utc(before)
        with self._write() as tx:
            check_purge_allowed(before, tx.now, retention_days)
            through_seq, through_hash = self._cut(tx.session, before)
            report = PurgeReport(
                before=before,
                by=by,
                through_seq=through_seq,
                through_hash=through_hash,
                events_deleted=0,
                deleted={},
                retention_days=retention_days,
            )
            if through_seq == 0:
                return report
            covering = None if anchors is None else _covering(tx.session, anchors, through_seq)
            report = report.model_copy(
                update={"anchor": covering, "keys": _removed_keys(tx.session, through_seq)}
            )
            report = self._remove(tx, report)
            event = tx.append(PURGE_KIND, PURGE_SUBJECT, "log", None, purge_payload(report))
            return report.model_copy(update={"event_seq": event.seq})

    @staticmethod
    def _cut(session: Session, before: datetime) -> tuple[int, str]:
        """The last entry of the prefix written before ``before`` (``0`` if there is none)."""
        first_kept = session.scalar(select(func.min(EventRow.seq)).where(EventRow.at >= before))
        stmt = select(EventRow.seq, EventRow.hash).order_by(EventRow.seq.desc()).limit(1)
        if first_kept is not None:
            stmt = stmt.where(EventRow.seq < first_kept)
        last = session.execute(stmt).first()
        return (0, "") if last is None else (int(last[0]), str(last[1]))

    def _remove(self, tx: WriteTx, report: PurgeReport) -> PurgeReport:
        session = tx.session
        newest = {
            (kind, ident): seq
            for kind, ident, seq in session.execute(
                select(EventRow.subject_type, EventRow.subject_id, func.max(EventRow.seq))
                .where(EventRow.subject_type.in_(SUBJECTS))
                .group_by(EventRow.subject_type, EventRow.subject_id)
            )
        }
        limit = report.through_seq
        rows: Rows = {
            kind: {str(getattr(row, "id")): row for row in session.scalars(select(row_cls))}  # noqa: B009
            for kind, (row_cls, _) in SUBJECTS.items()
        }
        old = {
            kind: {i for i in ids if newest.get((kind, i), limit + 1) <= limit}
            for kind, ids in rows.items()
        }
        keep = _referenced(rows, old)
        deleted: dict[str, int] = {}
        retained: dict[str, int] = {}
        paths: list[str] = []
        for kind in ORDER:
            row_cls, record_cls = SUBJECTS[kind]
            gone = sorted(old[kind] - keep[kind])
            if kind == "artifact":
                paths = sorted(str(getattr(rows[kind][i], "path")) for i in gone)  # noqa: B009
            if gone:
                session.execute(delete(row_cls).where(getattr(row_cls, "id").in_(gone)))  # noqa: B009
                deleted[kind] = len(gone)
            for ident in sorted(old[kind] & keep[kind]):
                record = to_record(rows[kind][ident], record_cls)
                model = getattr(record, "model", None)
                tx.log_record(record, kind, "retained", model, reason="newer evidence refers to it")
                retained[kind] = retained.get(kind, 0) + 1
        count = session.execute(delete(EventRow).where(EventRow.seq <= report.through_seq))
        session.execute(delete(HeadSignatureRow).where(HeadSignatureRow.seq <= report.through_seq))
        return report.model_copy(
            update={
                "events_deleted": int(getattr(count, "rowcount", 0)),
                "deleted": deleted,
                "retained": retained,
                "run_ids": sorted(old["run"] - keep["run"]),
                "artifact_paths": paths,
            }
        )


def _covering(session: Session, anchors: Sequence[Anchor], through_seq: int) -> dict[str, Any]:
    """The oldest anchor at or after ``through_seq`` that still matches the log."""
    for anchor in sorted(anchors, key=lambda a: a.seq):
        if anchor.deleted or anchor.seq < through_seq:
            continue
        stored = session.scalar(select(EventRow.hash).where(EventRow.seq == anchor.seq))
        if stored == anchor.hash:
            return anchor.model_dump(mode="json", include={"seq", "hash", "where", "written_at"})
    raise UsageError(
        f"refusing to purge entries up to {through_seq}: no anchor outside the database covers "
        "them yet, so nothing would show what was removed; run `prodcontrol evidence anchor` "
        "and purge again"
    )


def _removed_keys(session: Session, through_seq: int) -> list[dict[str, Any]]:
    """The key entries (and keys an earlier purge carried) that this purge removes."""
    stmt = (
        select(EventRow)
        .where(EventRow.seq <= through_seq, EventRow.kind.in_((*KEY_KINDS, PURGE_KIND)))
        .order_by(EventRow.seq)
    )
    events = [event_from_row(row) for row in session.scalars(stmt)]
    return [k.model_dump(mode="json") for k in key_entries(events)]


def _referenced(rows: Rows, old: dict[str, set[str]]) -> dict[str, set[str]]:
    """Old rows that a row staying in the store refers to, so they must stay too."""
    keep: dict[str, set[str]] = {kind: set() for kind in rows}
    for kind in ORDER:
        staying = [
            row
            for ident, row in rows[kind].items()
            if ident not in old[kind] or ident in keep[kind]
        ]
        for child, column, parent in REFERENCES:
            if child == kind:
                keep[parent] |= _targets(staying, column) & old[parent]
    return keep


def _targets(rows: Iterable[Base], column: str) -> set[str]:
    values: Any = (getattr(row, column) for row in rows)
    return {str(v) for v in values if v is not None}
