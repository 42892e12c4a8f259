"""What an operator with write access to the evidence database (and nothing else) can do.

Each helper works behind the store's back with raw SQL, and does the forger's homework: it
recomputes every hash after the change and moves the chain head, so the chain alone is
consistent again. Only what lives outside the database (the signing key, the anchors) can
still tell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import create_engine, text

from prodcontrol.evidence import Event, canonical_json, entry_hash
from prodcontrol.evidence.canonical import encode

Edit = Callable[[Event], dict[str, Any] | None]


def _at(url: str, event: Event) -> Any:
    return event.at.replace(tzinfo=None) if url.startswith("sqlite") else event.at


def rewrite(url: str, events: Sequence[Event], edit: Edit, head: bool = True) -> list[Event]:
    """Apply ``edit`` (a new payload, or None to keep) to the entries and re-chain them all.

    Returns the chain as rewritten; rows of ``pc_events`` and the chain head are updated.
    """
    out: list[Event] = []
    prev = events[0].prev_hash if events else "0" * 64
    for event in events:
        payload = edit(event)
        payload = event.payload if payload is None else payload
        stored = payload
        digest = entry_hash(
            prev,
            event.seq,
            event.at,
            event.kind,
            event.subject_type,
            event.subject_id,
            event.model,
            stored,
            event.format,
        )
        out.append(event.model_copy(update={"payload": stored, "prev_hash": prev, "hash": digest}))
        prev = digest
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE pc_events SET hash = 'x' || seq WHERE seq >= :s"),
                {"s": events[0].seq if events else 0},
            )
            for event in out:
                conn.execute(
                    text(
                        "UPDATE pc_events SET payload = :p, prev_hash = :prev, hash = :h "
                        "WHERE seq = :s"
                    ),
                    {
                        "p": encode(event.payload, event.format),
                        "prev": event.prev_hash,
                        "h": event.hash,
                        "s": event.seq,
                    },
                )
            if head and out:
                conn.execute(
                    text("UPDATE pc_chain_head SET seq = :s, hash = :h"),
                    {"s": out[-1].seq, "h": out[-1].hash},
                )
    finally:
        engine.dispose()
    return out


def cut_tail(url: str, events: Sequence[Event], keep_through: int) -> None:
    """Delete every entry after ``keep_through`` and move the head back to it."""
    last = next(e for e in events if e.seq == keep_through)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM pc_events WHERE seq > :s"), {"s": keep_through})
            conn.execute(text("DELETE FROM pc_head_signatures WHERE seq > :s"), {"s": keep_through})
            conn.execute(
                text("UPDATE pc_chain_head SET seq = :s, hash = :h"),
                {"s": last.seq, "h": last.hash},
            )
    finally:
        engine.dispose()


def append_forged(  # noqa: PLR0917 - the fields of the entry, in chain order
    url: str,
    head: Event,
    kind: str,
    subject_type: str,
    subject_id: str,
    model: str | None,
    payload: dict[str, Any],
) -> Event:
    """Chain a new entry after ``head`` with a correct hash and move the head to it."""
    seq = head.seq + 1
    digest = entry_hash(head.hash, seq, head.at, kind, subject_type, subject_id, model, payload)
    forged = Event(
        seq=seq,
        at=head.at,
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        model=model,
        payload=payload,
        prev_hash=head.hash,
        hash=digest,
    )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO pc_events (seq, at, kind, subject_type, subject_id, model, "
                    "payload, prev_hash, hash, format) VALUES (:seq, :at, :kind, :st, :sid, "
                    ":model, :payload, :prev, :hash, 2)"
                ),
                {
                    "seq": seq,
                    "at": _at(url, head),
                    "kind": kind,
                    "st": subject_type,
                    "sid": subject_id,
                    "model": model,
                    "payload": canonical_json(payload),
                    "prev": head.hash,
                    "hash": digest,
                },
            )
            conn.execute(
                text("UPDATE pc_chain_head SET seq = :s, hash = :h"), {"s": seq, "h": digest}
            )
    finally:
        engine.dispose()
    return forged


def sql(url: str, *statements: str, **params: object) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)
    finally:
        engine.dispose()
