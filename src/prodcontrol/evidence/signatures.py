"""Checking the signed heads of a chain: which key was in force where, and whether it signed.

Keys enter the chain as entries of their own: ``evidence.key_added`` for the first one,
``evidence.key_rotated`` for each later one, endorsed by a signature of the key it replaces.
Every commit of a signed store signs its new head with the key in force. A purge that removes
key entries copies them into its own payload (``keys``), so the timeline survives it.

Trust comes from outside the database: the configured private key, or a public key the
verifier was given. A key that appears in the chain's own timeline proves nothing by itself
(whoever rewrote the chain could have added one), so without a trusted key the report says the
signatures are only self-consistent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import Field

from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Event, Record
from prodcontrol.evidence.retention import PURGE_KIND
from prodcontrol.evidence.signing import (
    KEY_ADDED,
    KEY_KINDS,
    KEY_ROTATED,
    HeadSignature,
    VerifyKey,
    head_document,
    rotation_document,
)

SigningState = Literal["unsigned", "signed", "self-signed", "broken"]


class KeyEntry(Record):
    """A key as the chain introduced it, at entry ``seq``."""

    seq: int
    key_id: str
    public_key: str
    previous_key_id: str | None = None
    endorsement: str | None = None

    @classmethod
    def of(cls, seq: int, payload: dict[str, Any]) -> KeyEntry:
        return cls(seq=seq, **{k: payload.get(k) for k in cls.model_fields if k != "seq"})


class SigningReport(Record):
    state: SigningState
    key_id: str | None = Field(None, description="the key in force at the head")
    trusted: bool = False
    signatures_checked: int = 0
    problems: list[str] = Field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.state == "unsigned":
            return "unsigned: no evidence_signing_key was ever configured for this store"
        if self.state == "self-signed":
            return (
                f"signed by key {self.key_id}, not checked against a trusted key (set "
                "evidence_signing_key or evidence_public_key)"
            )
        if self.state == "signed":
            return f"signed by trusted key {self.key_id}"
        return "signatures BROKEN"


def key_entries(events: Iterable[Event]) -> list[KeyEntry]:
    """The key timeline: key entries in the log and those a purge carried over."""
    found: dict[str, KeyEntry] = {}
    for event in events:
        if event.kind in KEY_KINDS:
            entry = KeyEntry.of(event.seq, event.payload)
            found.setdefault(f"{entry.seq}:{entry.key_id}", entry)
        elif event.kind == PURGE_KIND:
            for kept in event.payload.get("keys") or []:
                entry = KeyEntry.model_validate(kept)
                found.setdefault(f"{entry.seq}:{entry.key_id}", entry)
    return sorted(found.values(), key=lambda k: k.seq)


def _timeline(
    entries: Sequence[KeyEntry], kinds: dict[int, str]
) -> tuple[list[str], dict[str, VerifyKey]]:
    """Check each key's introduction; returns the problems and the keys by id."""
    problems: list[str] = []
    keys: dict[str, VerifyKey] = {}
    current: str | None = None
    for entry in entries:
        try:
            key = VerifyKey.from_b64(entry.public_key)
        except UsageError as exc:
            problems.append(f"entry {entry.seq}: signing key {entry.key_id}: {exc}")
            continue
        if key.key_id != entry.key_id:
            problems.append(f"entry {entry.seq}: key id {entry.key_id} does not match its key")
            continue
        if current is None:
            if entry.previous_key_id is not None:
                problems.append(
                    f"entry {entry.seq}: key {entry.key_id} replaces key "
                    f"{entry.previous_key_id}, which the chain never introduced"
                )
        elif kinds.get(entry.seq, KEY_ROTATED) == KEY_ADDED:
            problems.append(
                f"entry {entry.seq}: a second signing key {entry.key_id} was added while key "
                f"{current} was in force: only a rotation endorsed by {current} may replace it"
            )
        elif entry.previous_key_id != current:
            problems.append(
                f"entry {entry.seq}: key {entry.key_id} replaces key {entry.previous_key_id}, "
                f"but the key in force was {current}: a key was swapped in without a rotation"
            )
        elif entry.endorsement is None or not keys[current].verify(
            rotation_document(entry.key_id, entry.public_key, entry.previous_key_id),
            entry.endorsement,
        ):
            problems.append(
                f"entry {entry.seq}: key {entry.key_id} is not endorsed by the key it replaces "
                f"({current}): rotate keys with `prodcontrol evidence rotate-key`"
            )
        keys[key.key_id] = key
        current = key.key_id
    return problems, keys


def _in_force(entries: Sequence[KeyEntry], seq: int) -> str | None:
    current = None
    for entry in entries:
        if entry.seq > seq:
            break
        current = entry.key_id
    return current


def check_signatures(
    events: Sequence[Event],
    signatures: Sequence[HeadSignature],
    head: tuple[int, str],
    start_seq: int,
    trusted: Sequence[VerifyKey] = (),
) -> SigningReport:
    """Every head signature against the entry it names and the key in force there.

    ``trusted`` are the public keys the verifier got from outside the database; with one, an
    unsigned head, a store without keys or a store signed by other keys are all failures.
    """
    entries = key_entries(events)
    kinds = {e.seq: e.kind for e in events if e.kind in KEY_KINDS}
    problems, keys = _timeline(entries, kinds)
    hashes = {e.seq: e.hash for e in events}
    head_seq, head_hash = head
    checked, last_good = 0, start_seq
    previous: HeadSignature | None = None
    for signature in sorted(signatures, key=lambda s: s.seq):
        if signature.seq <= start_seq:
            continue  # signs an entry a recorded purge removed
        problem = _signature_problem(signature, hashes, entries, keys, head_seq, last_good)
        if problem is None:
            problem = _gap_problem(previous, signature, entries, start_seq)
        if problem is not None:
            problems.append(problem)
        else:
            last_good = signature.seq
        previous = signature
        checked += 1
    signed_store = bool(entries or signatures or trusted)
    current = _in_force(entries, head_seq)
    if signed_store and head_seq > start_seq:
        at_head = [s for s in signatures if s.seq == head_seq and s.hash == head_hash]
        if not at_head:
            last = max((s.seq for s in signatures if s.seq <= head_seq), default=None)
            problems.append(
                f"entry {head_seq}: the head is not signed"
                + (f" (the last signed entry is {last})" if last is not None else "")
                + ": entries were written or rewritten without the signing key"
            )
    trusted_ids = {k.key_id for k in trusted}
    is_trusted = bool(trusted_ids & set(keys))
    if trusted and not entries:
        problems.append(
            f"the store has no signing key, but the configured key {sorted(trusted_ids)[0]} "
            "should have signed it: the keys were removed, or this is another store"
        )
    elif trusted and not is_trusted:
        problems.append(
            f"wrong key: the chain is signed by key(s) {', '.join(sorted(keys)) or 'none'}, "
            f"the configured key is {', '.join(sorted(trusted_ids))}"
        )
    if problems:
        state: SigningState = "broken"
    elif not signed_store:
        state = "unsigned"
    else:
        state = "signed" if is_trusted else "self-signed"
    return SigningReport(
        state=state,
        key_id=current,
        trusted=is_trusted and not problems,
        signatures_checked=checked,
        problems=problems,
    )


def _gap_problem(
    previous: HeadSignature | None,
    signature: HeadSignature,
    entries: Sequence[KeyEntry],
    start_seq: int,
) -> str | None:
    """Entries appended between two signed commits, by someone without the key."""
    if previous is not None and signature.from_seq != previous.seq:
        if signature.from_seq > previous.seq:
            return (
                f"entries {previous.seq + 1} to {signature.from_seq} were appended without the "
                f"signing key between two signed commits (entry {signature.seq} was signed by "
                f"a commit that started from entry {signature.from_seq})"
            )
        return (
            f"entry {signature.seq}: its commit started from entry {signature.from_seq}, "
            f"before the previous signed head {previous.seq}: signatures were re-ordered"
        )
    first_key = next((e.seq for e in entries), None)
    first_commit = first_key is not None and signature.from_seq < first_key <= signature.seq
    if previous is None and first_key is not None and first_key > start_seq and not first_commit:
        return (
            f"entry {signature.seq}: the oldest signature left does not belong to the "
            f"commit that chained the first key (entry {first_key}): signatures were removed"
        )
    return None


def _signature_problem(  # noqa: PLR0917 - one signature and the context it is checked in
    signature: HeadSignature,
    hashes: dict[int, str],
    entries: Sequence[KeyEntry],
    keys: dict[str, VerifyKey],
    head_seq: int,
    last_good: int,
) -> str | None:
    seq = signature.seq
    stored = hashes.get(seq)
    if stored is None:
        where = "the log ends before it" if seq > head_seq else "the entry is missing"
        return f"entry {seq}: signed when it was the head, but {where}: entries were removed"
    if stored != signature.hash:
        return (
            f"entry {seq}: its hash {stored[:12]} differs from the signed head "
            f"({signature.hash[:12]}): an entry from {last_good + 1} to {seq} was rewritten "
            f"(entry {last_good} is the last one that still matches its signed head)"
        )
    in_force = _in_force(entries, seq)
    if signature.key_id != in_force:
        return (
            f"entry {seq}: signed by key {signature.key_id}, but the key in force there is "
            f"{in_force or 'none'}"
        )
    key = keys.get(signature.key_id)
    document = head_document(seq, signature.hash, signature.key_id, signature.from_seq)
    if key is None or not key.verify(document, signature.signature):
        return f"entry {seq}: the head signature does not verify with key {signature.key_id}"
    return None
