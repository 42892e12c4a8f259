"""Anchors: the chain head of a day, written where the operator of the database cannot rewrite it.

A hash chain shows that the log was changed, unless whoever changed it recomputed every hash
after the change. An anchor closes that gap: the head ``(seq, hash)`` copied, once a day, into a
system the database operator does not control (a run in MLflow, see
:mod:`prodcontrol.adapters.mlflow_anchor`; a file under the state directory for the embedded
default). ``verify`` then checks that each anchored entry still has the anchored hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, ValidationError

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Record, Sha256Hex, UtcDatetime

if TYPE_CHECKING:
    from prodcontrol.evidence.port import EvidenceStore
    from prodcontrol.ports import AnchorSink


class Anchor(Record):
    """The head of the chain on ``day``, as written to one place."""

    day: date
    seq: int = Field(ge=0)
    hash: Sha256Hex
    written_at: UtcDatetime
    where: str = ""


class FileAnchors:
    """Anchors appended to a JSON-lines file (the embedded default: ``<state>/anchors.jsonl``).

    Weaker than an outside system (whoever owns the state directory can edit it), but it still
    catches a database rewritten by someone without access to that directory.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return f"file {self.path}"

    def write_anchor(self, anchor: Anchor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(anchor.model_dump_json(exclude={"where"}) + "\n")

    def read_anchors(self) -> list[Anchor]:
        if not self.path.is_file():
            return []
        anchors = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                anchors.append(Anchor.model_validate({**data, "where": self.name}))
            except (ValueError, ValidationError) as exc:
                raise UsageError(
                    f"{self.path}:{number}: not an anchor ({exc}); the file was edited by hand"
                ) from None
        return anchors


def write_anchors(store: EvidenceStore, sinks: Sequence[AnchorSink], now: datetime) -> Anchor:
    """Copy the current head to every sink, as the anchor of ``now``'s day."""
    seq, digest = store.chain_head()
    now = ensure_utc(now)
    anchor = Anchor(day=now.date(), seq=seq, hash=digest, written_at=now)
    for sink in sinks:
        sink.write_anchor(anchor.model_copy(update={"where": sink.name}))
    return anchor


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
