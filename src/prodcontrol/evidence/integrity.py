"""``evidence verify`` against a database: the chain, the tables, every artifact file, the anchors.

The store checks the chain and that each row equals its newest logged record
(:meth:`EvidenceStore.verify`); this adds the files the log vouches for (their SHA-256 is in the
log) and the anchors kept outside the database, and names the first broken entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from prodcontrol.errors import ProdControlError
from prodcontrol.evidence.anchor import check_anchoring, check_anchors
from prodcontrol.evidence.chain import latest_records
from prodcontrol.evidence.records import Artifact, ChainReport, Event, Record, file_sha256
from prodcontrol.evidence.retention import check_purges
from prodcontrol.evidence.signatures import SigningReport, check_signatures

if TYPE_CHECKING:
    from prodcontrol.evidence.port import EvidenceStore
    from prodcontrol.evidence.signing import VerifyKey
    from prodcontrol.ports import AnchorSink


class VerifyReport(Record):
    ok: bool
    first_broken: str | None = Field(None, description="the first broken entry, in words")
    chain: ChainReport
    rows_checked: int
    artifacts_checked: int
    anchors_checked: int
    newest_anchor: dict[str, int] = Field(default_factory=dict, description="sink -> entry")
    signing: SigningReport
    problems: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def artifact_problem(artifact: Artifact, path: Path | None = None) -> str | None:
    """Why an artifact file no longer matches the hash the log recorded for it, or None."""
    path = path or Path(artifact.path)
    label = f"artifact {artifact.id} ({artifact.name}) of run {artifact.run_id}"
    if not path.is_file():
        return f"{label}: file {path} is missing"
    actual = file_sha256(path)
    if actual != artifact.sha256:
        return (
            f"{label}: file {path} was changed (sha256 {actual[:12]}, "
            f"the log recorded {artifact.sha256[:12]})"
        )
    return None


class VerifiedFile(Record):
    """An artifact file's bytes, read once and hashed: exactly the bytes the log vouches for.
    Whoever renders or serves them uses these bytes, never the file again (which could have been
    swapped between the check and the read)."""

    artifact_id: str
    name: str
    path: str
    sha256: str = Field(description="of ``data``; the one the evidence recorded")
    data: bytes


class ArtifactChanged(ProdControlError):
    """An artifact file is missing or no longer has the SHA-256 the log recorded for it."""


def read_verified(artifact: Artifact, path: Path | None = None) -> VerifiedFile:
    """The artifact's bytes if they hash to what the log recorded; else :class:`ArtifactChanged`
    saying which file and what was expected (the words of :func:`artifact_problem`)."""
    path = path or Path(artifact.path)
    label = f"artifact {artifact.id} ({artifact.name}) of run {artifact.run_id}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ArtifactChanged(f"{label}: file {path} is missing ({exc.strerror})") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != artifact.sha256:
        raise ArtifactChanged(
            f"{label}: file {path} was changed (sha256 {actual[:12]}, "
            f"the log recorded {artifact.sha256[:12]})"
        )
    return VerifiedFile(
        artifact_id=artifact.id, name=artifact.name, path=str(path), sha256=actual, data=data
    )


def logged_artifacts(events: Iterable[Event]) -> list[Artifact]:
    """Every artifact as the log last recorded it."""
    return [
        Artifact.model_validate(record)
        for (kind, _), record in latest_records(events).items()
        if kind == "artifact"
    ]


def describe_entry(events: Sequence[Event], seq: int | None, reason: str | None) -> str:
    """Name the entry at ``seq`` (kind, subject, model) together with why it is broken."""
    by_seq = {e.seq: e for e in events}
    event = by_seq.get(seq) if seq is not None else None
    if event is None:
        return f"entry {seq}: {reason}"
    text = f"entry {seq} ({_name(event)}): {reason}"
    previous = by_seq.get(event.seq - 1)
    if previous is not None and previous.hash != event.prev_hash:
        text += f"; the entry before it is now entry {previous.seq} ({_name(previous)})"
    return text


def _name(event: Event) -> str:
    model = f" of {event.model}" if event.model else ""
    return f"{event.kind} {event.subject_type} {event.subject_id}{model}"


class VerifyPolicy(Record):
    """What verify holds the store to, from the settings."""

    now: datetime
    anchor_max_age: timedelta = timedelta(days=1)
    retention_days: int = 183


def verify_evidence(
    store: EvidenceStore,
    anchors: Sequence[AnchorSink] = (),
    trusted: Sequence[VerifyKey] = (),
    policy: VerifyPolicy | None = None,
) -> VerifyReport:
    """Everything ``evidence verify`` checks, in the order a reviewer would want it named.

    ``trusted`` are the public keys from outside the database (the configured signing key's,
    ``evidence_public_key``); without one, signatures are only checked for consistency.
    ``policy`` sets the instant and the limits anchors and purges are checked against.
    """
    policy = policy or VerifyPolicy(now=datetime.now(UTC))
    report = store.verify()
    head = report.recorded_head
    events = [e for e in store.events() if e.seq <= head[0]]
    start_seq = report.start_seq
    signing = check_signatures(events, report.head_signatures, head, start_seq, trusted)
    artifacts = logged_artifacts(events)
    artifact_problems = [p for a in artifacts if (p := artifact_problem(a)) is not None]
    by_sink = {sink.name: sink.read_anchors() for sink in anchors}
    read = [a for found in by_sink.values() for a in found]
    hashes = {e.seq: e.hash for e in events}
    anchor_problems = check_anchors(read, hashes, start_seq, report.chain.head_seq)
    anchoring = check_anchoring(events, by_sink, start_seq, policy.now, policy.anchor_max_age)
    purges = check_purges(
        events,
        read,
        policy.retention_days,
        {s.seq for s in report.head_signatures},
        signing.state != "unsigned",
    )
    problems: list[str] = []
    if not report.chain.ok:
        problems.append(describe_entry(events, report.chain.first_bad_seq, report.chain.reason))
    problems += signing.problems + purges + report.mismatches + artifact_problems
    problems += anchor_problems + anchoring.problems
    return VerifyReport(
        ok=not problems,
        first_broken=problems[0] if problems else None,
        chain=report.chain,
        rows_checked=report.rows_checked,
        artifacts_checked=len(artifacts),
        anchors_checked=len(read),
        newest_anchor=anchoring.newest,
        signing=signing,
        problems=problems,
        warnings=anchoring.warnings,
    )
