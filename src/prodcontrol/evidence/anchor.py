"""Anchors: the signed chain head, copied where the operator of the database cannot rewrite it.

A hash chain shows that the log was changed, unless whoever changed it recomputed every hash
after the change; a signed head stops that for whoever lacks the key, but not a cut of the
newest entries back to an older signed head. Anchors close that gap: every control run and
every ticker tick (at most once per ``evidence_anchor_interval_s``) copies the head ``(seq,
hash)`` and its signature into systems the database operator does not control (a run in MLflow,
see :mod:`prodcontrol.adapters.mlflow_anchor`; a JSON-lines file at ``evidence_anchor_file``).

Each anchoring is also chained, as an ``evidence.anchored`` entry naming where it went and
which sinks failed. ``verify`` then checks both ways: every anchor still matches the log, every
anchor the log says was written is still in its sink (a deleted MLflow run is named), and no
entry stayed unanchored longer than ``evidence_anchor_max_age_s``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Event, Record, Sha256Hex, UtcDatetime

if TYPE_CHECKING:
    from prodcontrol.evidence.port import EvidenceStore
    from prodcontrol.ports import AnchorSink

ANCHORED_KIND = "evidence.anchored"
ANCHOR_SUBJECT = "evidence"


class Anchor(Record):
    """The head of the chain at ``written_at``, as written to one place."""

    day: date
    seq: int = Field(ge=0)
    hash: Sha256Hex
    written_at: UtcDatetime
    key_id: str | None = Field(None, description="the key that signed this head, if any")
    signature: str | None = Field(None, description="the head's signature, if signed")
    where: str = ""
    ref: str = Field("", description="the anchor's id in its sink (an MLflow run id)")
    deleted: bool = Field(False, description="the sink still has it, but marked deleted")


class FileAnchors:
    """Anchors appended to a JSON-lines file (``evidence_anchor_file``).

    As strong as the file's storage: put it where the database operator cannot write (another
    host, an append-only or WORM bucket mounted here). The demo keeps it in its state dir.
    """

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().resolve()

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def write_anchor(self, anchor: Anchor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(anchor.model_dump_json(exclude={"where", "ref", "deleted"}) + "\n")

    def read_anchors(self) -> list[Anchor]:
        if not self.path.is_file():
            return []
        anchors = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                anchors.append(
                    Anchor.model_validate({**data, "where": self.name, "ref": f"line {number}"})
                )
            except (ValueError, ValidationError) as exc:
                raise UsageError(
                    f"{self.path}:{number}: not an anchor ({exc}); the file was edited by hand"
                ) from None
        return anchors


# --------------------------------------------------------------------------- writing


class AnchorOutcome(Record):
    """What one anchoring did; the same content is the payload of its ``evidence.anchored``."""

    seq: int
    hash: str
    written_to: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict, description="sink -> why it failed")
    skipped: str | None = Field(None, description="why nothing was anchored (not due, no sinks)")
    event_seq: int | None = None


def _head_signature(store: EvidenceStore, seq: int) -> tuple[str | None, str | None]:
    for signature in store.head_signatures(after_seq=seq - 1):
        if signature.seq == seq:
            return signature.key_id, signature.signature
    return None, None


def anchor_head(
    store: EvidenceStore,
    sinks: Sequence[AnchorSink],
    now: datetime,
    *,
    every: timedelta = timedelta(0),
) -> AnchorOutcome:
    """Copy the signed head to every sink, unless the last anchoring is younger than ``every``.

    A sink that fails does not stop the others; the outcome, failures included, is chained.
    Nothing is written when no entry was added since the last anchoring.
    """
    now = ensure_utc(now)
    seq, digest = store.chain_head()
    if not sinks:
        return AnchorOutcome(seq=seq, hash=digest, skipped="no anchor sink is configured")
    last = store.latest_event(ANCHORED_KIND)
    if last is not None:
        if last.seq == seq:
            return AnchorOutcome(seq=seq, hash=digest, skipped="nothing new since the last anchor")
        if every > timedelta(0) and now - ensure_utc(last.at) < every:
            return AnchorOutcome(seq=seq, hash=digest, skipped="the last anchor is recent")
    if seq == 0:
        return AnchorOutcome(seq=seq, hash=digest, skipped="the log is empty")
    key_id, signature = _head_signature(store, seq)
    anchor = Anchor(
        day=now.date(), seq=seq, hash=digest, written_at=now, key_id=key_id, signature=signature
    )
    outcome = AnchorOutcome(seq=seq, hash=digest)
    for sink in sinks:
        try:
            sink.write_anchor(anchor.model_copy(update={"where": sink.name}))
            outcome.written_to.append(sink.name)
        except Exception as exc:  # one sink down must not stop the others, nor the run
            outcome.failed[sink.name] = f"{type(exc).__name__}: {exc}"[:500]
    payload = outcome.model_dump(mode="json", exclude={"skipped", "event_seq"})
    payload["written_at"] = anchor.written_at.isoformat()
    event = store.record_event(ANCHORED_KIND, ANCHOR_SUBJECT, "head", None, payload)
    return outcome.model_copy(update={"event_seq": event.seq})


# --------------------------------------------------------------------------- checking


class AnchorCheck(Record):
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    newest: dict[str, int] = Field(default_factory=dict, description="sink -> newest entry")


def check_anchors(
    anchors: Iterable[Anchor], hashes: Mapping[int, str], start_seq: int, head_seq: int
) -> list[str]:
    """Describe every anchor the log no longer agrees with.

    ``hashes`` maps each entry still in the log to its stored hash; entries at or before
    ``start_seq`` were removed by a recorded purge and cannot be checked any more.
    """
    problems = []
    for anchor in sorted(anchors, key=lambda a: (a.seq, a.day)):
        label = f"anchor of {anchor.day} in {anchor.where or 'an anchor store'}"
        if anchor.deleted:
            problems.append(
                f"entry {anchor.seq}: the {label} ({anchor.ref}) was deleted: someone is "
                "removing the evidence that the log was seen"
            )
            continue
        if anchor.seq == 0 or anchor.seq <= start_seq:
            continue
        if anchor.seq > head_seq:
            problems.append(
                f"entry {anchor.seq}: named by the {label} but the log ends at entry {head_seq}: "
                "entries were removed from the end"
            )
            continue
        stored = hashes.get(anchor.seq)
        if stored is None:
            problems.append(f"entry {anchor.seq}: named by the {label} but missing from the log")
        elif stored != anchor.hash:
            problems.append(
                f"entry {anchor.seq}: hash {stored[:12]} differs from the {label} "
                f"({anchor.hash[:12]}): the log was rewritten at or before this entry"
            )
    return problems


def check_anchoring(
    events: Sequence[Event],
    anchors: Mapping[str, Sequence[Anchor]],
    start_seq: int,
    now: datetime,
    max_age: timedelta,
) -> AnchorCheck:
    """The log's own record of anchoring against the sinks, and how fresh the anchors are.

    ``anchors`` maps each configured sink's name to what it holds. Every anchoring the log
    records as written to a sink must still be there; an entry must not stay unanchored in a
    sink longer than ``max_age`` (a sink that was down shows here as the gap it left).
    """
    check = AnchorCheck()
    now = ensure_utc(now)
    held = {
        name: {(a.seq, a.hash) for a in found if not a.deleted} for name, found in anchors.items()
    }
    for event in events:
        if event.kind != ANCHORED_KIND:
            continue
        seq, digest = event.payload.get("seq"), event.payload.get("hash")
        for name in event.payload.get("written_to") or []:
            if name not in held:
                check.problems.append(
                    f"entry {event.seq}: the head (entry {seq}) was anchored to {name}, which "
                    "this verify does not read: configure it (evidence_anchor_file, "
                    "mlflow_tracking_uri) so its anchors are checked"
                )
            elif seq is not None and int(seq) > start_seq and (seq, digest) not in held[name]:
                check.problems.append(
                    f"entry {event.seq}: the anchor of entry {seq} written to {name} is gone "
                    "from it: anchors were deleted"
                )
        for name, reason in (event.payload.get("failed") or {}).items():
            check.warnings.append(
                f"entry {event.seq}: anchoring entry {seq} to {name} failed ({reason})"
            )
    if not anchors:
        check.warnings.append(
            "no anchor sink is configured (evidence_anchor_file, mlflow_tracking_uri): a cut "
            "of the newest entries back to an older signed head cannot be detected"
        )
        return check
    content = [e for e in events if e.kind != ANCHORED_KIND and e.seq > start_seq]
    for name, found in anchors.items():
        newest = max((a.seq for a in found if not a.deleted), default=start_seq)
        check.newest[name] = newest
        unanchored = [e for e in content if e.seq > newest]
        if unanchored and now - ensure_utc(unanchored[0].at) > max_age:
            first = unanchored[0]
            check.problems.append(
                f"entry {first.seq}: not anchored in {name} since {first.at:%Y-%m-%d %H:%M} UTC "
                f"(the newest anchor there is of entry {newest}; allowed: "
                f"{_span(max_age)}): anchoring stopped or this sink was down, so entries from "
                f"{first.seq} on could have been cut or replaced unnoticed"
            )
    return check


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{delta.total_seconds() / 60:g} min"


def anchor_payloads(events: Iterable[Event]) -> list[dict[str, Any]]:
    """The ``evidence.anchored`` payloads of the log, oldest first."""
    return [e.payload for e in events if e.kind == ANCHORED_KIND]
