"""The hash chain over the event log: pure functions, no database.

Each entry's hash is ``SHA-256(prev_hash + canonical JSON of the entry)``, so changing, removing,
inserting or reordering any entry changes every hash after it. The canonical form is RFC 8785
(see :mod:`prodcontrol.evidence.canonical`), so that a verifier written in another language can
recompute it; entries of stores written before it keep their legacy format 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prodcontrol.evidence.canonical import (
    CURRENT_FORMAT,
    FORMATS,
    LEGACY_FORMAT,
    canonical_json,
    encode,
    format_datetime,
)
from prodcontrol.evidence.records import ChainReport, Event

GENESIS = "0" * 64

__all__ = ["GENESIS", "canonical_json", "entry_hash", "format_datetime", "hash_of", "verify_chain"]


def entry_hash(  # noqa: PLR0917 - positional on purpose: the hash covers these, in this order
    prev_hash: str,
    seq: int,
    at: datetime,
    kind: str,
    subject_type: str,
    subject_id: str,
    model: str | None,
    payload: dict[str, Any],
    fmt: int = CURRENT_FORMAT,
) -> str:
    """SHA-256 (hex) of the previous hash followed by the canonical body of this entry.

    Format 2 bodies are RFC 8785 and name their format, so an entry cannot be passed off as
    written in another one; format 1 bodies are the pre-RFC 8785 form of older stores.
    """
    document: dict[str, Any] = {
        "seq": seq,
        "at": format_datetime(at),
        "kind": kind,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "model": model,
        "payload": payload,
    }
    if fmt != LEGACY_FORMAT:
        document["format"] = fmt
    body = encode(document, fmt)
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def next_entry(  # noqa: PLR0917 - an entry's fields, in entry_hash's order
    head: tuple[int, str],
    at: datetime,
    kind: str,
    subject_type: str,
    subject_id: str,
    model: str | None,
    payload: dict[str, Any],
) -> tuple[Event, str]:
    """The entry that follows ``head`` (``(seq, hash)``), in the current format, and the
    canonical text of its payload (what a store keeps; the event holds it parsed back)."""
    text = canonical_json(payload)
    stored = json.loads(text)
    seq, prev_hash = head[0] + 1, head[1]
    digest = entry_hash(
        prev_hash, seq, at, kind, subject_type, subject_id, model, stored, CURRENT_FORMAT
    )
    event = Event(
        seq=seq,
        at=at,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        model=model,
        payload=stored,
        prev_hash=prev_hash,
        hash=digest,
        format=CURRENT_FORMAT,
    )
    return event, text


def hash_of(event: Event) -> str:
    """Recompute an event's hash from its fields (its stored ``hash`` is not trusted)."""
    return entry_hash(
        event.prev_hash,
        event.seq,
        event.at,
        event.kind,
        event.subject_type,
        event.subject_id,
        event.model,
        event.payload,
        event.format,
    )


def _check(event: Event, expected_seq: int, prev_hash: str, fmt: int) -> str | None:
    """Why ``event`` cannot follow the chain so far, or None if it can."""
    if event.format not in FORMATS or event.format < fmt:
        return (
            f"entry is in evidence format {event.format} after an entry in format {fmt}: "
            "formats only move forward, so the entry was rewritten"
        )
    if event.seq != expected_seq:
        return (
            f"expected entry {expected_seq} but found {event.seq}: entries were removed, "
            "inserted or reordered"
        )
    if event.prev_hash != prev_hash:
        return (
            "prev_hash does not match the previous entry: an entry before it was removed, "
            "inserted or changed"
        )
    if hash_of(event) != event.hash:
        return "hash does not match the entry's content: the entry was edited"
    return None


def verify_chain(
    events: Iterable[Event],
    expected_head: tuple[int, str] | None = None,
    start: tuple[int, str] = (0, GENESIS),
) -> ChainReport:
    """Walk the log in order and report the first entry that breaks the chain.

    ``expected_head`` is the ``(seq, hash)`` the store recorded as its head; without it, entries
    cut from the end of the log would go unnoticed. ``start`` is the ``(seq, hash)`` the first
    entry follows: the genesis, or the last entry a recorded purge removed.
    """
    seq, head = start
    fmt = LEGACY_FORMAT
    for event in events:
        reason = _check(event, seq + 1, head, fmt)
        if reason is not None:
            return ChainReport(
                ok=False,
                count=seq,
                head_seq=seq,
                head_hash=head,
                first_bad_seq=event.seq,
                reason=reason,
            )
        seq, head, fmt = event.seq, event.hash, event.format
    if expected_head is not None and expected_head != (seq, head):
        want_seq, want_hash = expected_head
        return ChainReport(
            ok=False,
            count=seq,
            head_seq=seq,
            head_hash=head,
            first_bad_seq=min(seq, want_seq) + 1,
            reason=f"the log ends at entry {seq} ({head[:12]}) but the recorded "
            f"head is entry {want_seq} ({want_hash[:12]}): entries were "
            "removed from or added to the end",
        )
    return ChainReport(ok=True, count=seq, head_seq=seq, head_hash=head)


RecordKey = tuple[str, str]


def latest_records(events: Iterable[Event]) -> dict[RecordKey, dict[str, Any]]:
    """The newest record each ``(subject_type, subject_id)`` was written as, from the log.

    Only the store's own row events carry a ``record`` in their payload.
    """
    latest: dict[RecordKey, dict[str, Any]] = {}
    for event in events:
        record = event.payload.get("record")
        if isinstance(record, dict):
            latest[(event.subject_type, event.subject_id)] = record
    return latest


def compare_records(
    logged: dict[RecordKey, dict[str, Any]],
    rows: Iterable[tuple[RecordKey, dict[str, Any]]],
    subject_types: Iterable[str],
) -> list[str]:
    """Describe every row that differs from its newest event, lacks one, or has disappeared.

    ``rows`` are the tables as they are now, each as ``((subject_type, id), record as JSON)``;
    ``subject_types`` are the types those tables cover (other logged types are not checked).
    """
    problems: list[str] = []
    seen: set[RecordKey] = set()
    for key, record in rows:
        seen.add(key)
        expected = logged.get(key)
        if expected is None:
            problems.append(f"{key[0]} {key[1]}: row has no event in the log (inserted directly)")
        elif canonical_json(expected) != canonical_json(record):
            fields = sorted(
                k for k in expected.keys() | record.keys() if expected.get(k) != record.get(k)
            )
            problems.append(
                f"{key[0]} {key[1]}: row differs from its logged record in "
                f"{', '.join(fields)} (edited directly)"
            )
    covered = set(subject_types)
    problems += [
        f"{kind} {ident}: logged but the row is gone (deleted directly)"
        for kind, ident in sorted(logged.keys() - seen)
        if kind in covered
    ]
    return problems
