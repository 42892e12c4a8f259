"""Retention: how long evidence must be kept, and what a purge leaves behind in the chain.

EU AI Act Art. 19 and 26(6) ask deployers to keep automatically generated logs for at least six
months; ``Settings.retention_days`` (default 183) is that floor. A purge removes a prefix of the
log (every entry before a date) together with the rows only those entries describe, and then
appends one ``evidence.purged`` entry naming the last removed entry. The chain is verified from
there on, so a purge is visible and a prefix cut without one is reported as tampering.

A purge is honest only if it can be checked: its entry names the anchor that shows the removed
entries existed (an anchor in a sink outside the database, at or after the last removed entry),
it carries the key entries it removed (so signatures stay checkable), its commit is signed in a
signed store, and its date respects ``retention_days``. :func:`check_purges` checks all four.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from prodcontrol.clock import ensure_utc
from prodcontrol.errors import UsageError
from prodcontrol.evidence.chain import GENESIS
from prodcontrol.evidence.records import Event, Record

if TYPE_CHECKING:
    from prodcontrol.evidence.anchor import Anchor

PURGE_KIND = "evidence.purged"
PURGE_SUBJECT = "evidence"


class PurgeReport(Record):
    """What a purge removed; the same content is the payload of its chained entry."""

    before: datetime
    by: str
    through_seq: int = Field(description="the last log entry removed (0: none)")
    through_hash: str
    events_deleted: int
    deleted: dict[str, int] = Field(description="rows removed, by record type")
    retained: dict[str, int] = Field(
        default_factory=dict, description="old rows kept because newer evidence refers to them"
    )
    run_ids: list[str] = Field(default_factory=list)
    artifact_paths: list[str] = Field(default_factory=list)
    retention_days: int = 0
    anchor: dict[str, Any] | None = Field(
        None, description="the anchor (seq, hash, where) that covers the last removed entry"
    )
    keys: list[dict[str, Any]] = Field(
        default_factory=list, description="key entries the purge removed, kept for verify"
    )
    event_seq: int | None = Field(None, description="the evidence.purged entry, if one was written")

    @property
    def nothing(self) -> bool:
        return self.events_deleted == 0


def check_purge_allowed(before: datetime, now: datetime, retention_days: int) -> None:
    """Refuse a purge that would remove evidence younger than the retention period."""
    oldest_allowed = ensure_utc(now) - timedelta(days=retention_days)
    if ensure_utc(before) > oldest_allowed:
        raise UsageError(
            f"refusing to purge evidence before {ensure_utc(before):%Y-%m-%d}: the retention "
            f"period is {retention_days} days (settings retention_days, EU AI Act Art. 19 and "
            f"26(6)), so nothing after {oldest_allowed:%Y-%m-%d} may be deleted; pass an "
            "earlier --before date"
        )


def purge_payload(report: PurgeReport) -> dict[str, Any]:
    return report.model_dump(mode="json", exclude={"event_seq"})


def chain_start(first: Event | None, purges: Iterable[Event]) -> tuple[int, str]:
    """The ``(seq, hash)`` the oldest remaining entry follows.

    That is the genesis, unless a recorded purge removed exactly the entries before it. If
    entries are missing at the start without a purge that says so, the genesis is returned and
    the chain check reports the gap.
    """
    if first is None or first.seq == 1:
        return 0, GENESIS
    for purge in purges:
        through = purge.payload.get("through_seq")
        digest = purge.payload.get("through_hash")
        if through == first.seq - 1 and isinstance(digest, str):
            return int(through), digest
    return 0, GENESIS


def check_purges(
    events: Iterable[Event],
    anchors: Iterable[Anchor],
    retention_days: int,
    signed_seqs: set[int],
    signed_store: bool,
) -> list[str]:
    """Why each recorded purge cannot be trusted: date, anchor, signature."""
    held = {(a.seq, a.hash) for a in anchors if not a.deleted}
    problems = []
    for event in events:
        if event.kind != PURGE_KIND:
            continue
        label = f"entry {event.seq} (a purge of entries up to {event.payload.get('through_seq')})"
        try:
            before = datetime.fromisoformat(str(event.payload.get("before")))
        except ValueError:
            problems.append(f"{label}: names no valid date; it was not written by prodcontrol")
            continue
        oldest_allowed = ensure_utc(event.at) - timedelta(days=retention_days)
        if ensure_utc(before) > oldest_allowed:
            problems.append(
                f"{label}: removed evidence before {ensure_utc(before):%Y-%m-%d}, inside the "
                f"retention period of {retention_days} days on {ensure_utc(event.at):%Y-%m-%d}: "
                "an honest purge refuses that"
            )
        anchor = event.payload.get("anchor")
        through = int(event.payload.get("through_seq") or 0)
        if not isinstance(anchor, dict):
            if held or signed_store:
                problems.append(
                    f"{label}: names no anchor of the removed entries, so nothing outside the "
                    "database shows what was removed"
                )
        elif int(anchor.get("seq", -1)) < through:
            problems.append(f"{label}: its anchor (entry {anchor.get('seq')}) is older than it")
        elif held and (anchor.get("seq"), anchor.get("hash")) not in held:
            problems.append(
                f"{label}: the anchor it names (entry {anchor.get('seq')} in "
                f"{anchor.get('where')}) is in no anchor sink"
            )
        if signed_store and event.seq not in signed_seqs:
            problems.append(
                f"{label}: its commit is not signed: the purge was written without the key"
            )
    return problems
