"""Evidence packs: a self-contained zip a reviewer reads and verifies offline.

Layout::

    index.html          the human-readable evidence (rendered by the caller, see web.render)
    evidence.jsonl      every log entry in scope, exactly as chained
    chain.jsonl         every link of the whole log (seq, prev_hash, hash): proves continuity
    artifacts/...       the report files of the runs in scope, exactly as recorded (their
                        SHA-256 is in the evidence): the results JSON and the full Evidently
                        snapshot (``.snapshot.json.gz``; Evidently's ``Snapshot.load_dict`` +
                        ``get_html_str`` renders it), or the ``.html.gz`` of older runs. No
                        HTML is rendered into a pack: it would be a file the evidence does not
                        vouch for
    manifest.json       every other member with its size and SHA-256, the entry count, the
                        chain start and signed head, the key timeline, the anchors, whether
                        the store verified at export; signed (Ed25519 over RFC 8785 JSON)

:func:`verify_pack` needs nothing but the zip, and runs the same self-contained checker a
regulator runs without prodcontrol (:mod:`prodcontrol.evidence.packcheck`, copied to
``tools/verify_pack.py``).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from prodcontrol.catalog.config import Config
from prodcontrol.clock import ensure_utc
from prodcontrol.evidence import packcheck
from prodcontrol.evidence.anchor import Anchor
from prodcontrol.evidence.canonical import format_datetime
from prodcontrol.evidence.chain import GENESIS, canonical_json
from prodcontrol.evidence.frameworks import ClauseRow, framework_ids, framework_view
from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.evidence.records import (
    Action,
    Artifact,
    ControlRun,
    Decision,
    DeliveryAttempt,
    Escalation,
    Event,
    Finding,
    Gate,
    HeadSignature,
    Notification,
    Record,
    Verdict,
    Waiver,
)
from prodcontrol.evidence.signatures import KeyEntry, key_entries
from prodcontrol.evidence.signing import SigningKey, VerifyKey

FORMAT = "prodcontrol-evidence-pack/2"
MANIFEST = "manifest.json"
MANIFEST_TYPE = packcheck.MANIFEST_TYPE
RIGHTS = ("deploy", "change", "exception", "escalation_outcome", "shutdown", "use_case", "funding")


class Scope(Record):
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    frameworks: list[str] = Field(default_factory=list)

    def covers(self, model: str | None, at: datetime) -> bool:
        at = ensure_utc(at)
        if self.model is not None and model != self.model:
            return False
        if self.since is not None and at < ensure_utc(self.since):
            return False
        return self.until is None or at < ensure_utc(self.until)


class Link(Record):
    seq: int
    prev_hash: str
    hash: str


class ManifestFile(Record):
    sha256: str
    size: int


class StoreCheck(Record):
    """Whether the store verified when the pack was exported (``--allow-broken`` otherwise)."""

    ok: bool = True
    problems: list[str] = Field(default_factory=list)
    allowed_broken: bool = False


class Manifest(Record):
    format: str = FORMAT
    created_at: datetime
    scope: Scope
    entry_count: int = Field(description="links in chain.jsonl")
    chain_start: Link = Field(description="the entry the log starts after (seq 0: genesis)")
    chain_head: Link
    head_signature: HeadSignature | None = None
    keys: list[KeyEntry] = Field(default_factory=list)
    anchors: list[Anchor] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="artifact id -> its path in the pack"
    )
    missing_artifacts: list[str] = Field(default_factory=list)
    store_verified: StoreCheck = Field(default_factory=StoreCheck)
    members: dict[str, ManifestFile]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)


class ModelView(_View):
    name: str
    description: str
    tier: str
    stage: str
    owners: dict[str, str]
    rights: dict[str, list[str]]


class RunView(_View):
    run: ControlRun
    verdicts: list[Verdict]
    artifacts: list[tuple[Artifact, str | None]]


class GateView(_View):
    gate: Gate
    decisions: list[Decision]


class FindingView(_View):
    finding: Finding
    gates: list[GateView]
    waivers: list[Waiver]


class EscalationView(_View):
    escalation: Escalation
    deliveries: list[tuple[Notification, list[DeliveryAttempt]]]


class PackContents(_View):
    """Everything index.html shows; also what the web pages reuse."""

    scope: Scope
    created_at: datetime
    chain_start: Link
    chain_head: Link
    anchors: list[Anchor]
    head_signature: HeadSignature | None
    keys: list[KeyEntry]
    store_check: StoreCheck
    models: list[ModelView]
    controls: list[dict[str, Any]]
    frameworks: dict[str, list[ClauseRow]]
    framework_titles: dict[str, str]
    runs: list[RunView]
    findings: list[FindingView]
    other_gates: list[GateView]
    escalations: list[EscalationView]
    actions: list[Action]
    events: list[Event]
    links: list[Link]


# --------------------------------------------------------------------------- collecting


def model_views(config: Config, only: str | None) -> list[ModelView]:
    views = []
    for entry in config.inventory.models.values():
        if only is not None and entry.name != only:
            continue
        people = config.inventory.people
        owners = {
            role: people[pid].name if pid in people else pid
            for role, pid in entry.owners.assigned().items()
        }
        rights = {right: sorted(config.holders_of(entry, right)) for right in RIGHTS}  # type: ignore[arg-type]
        views.append(
            ModelView(
                name=entry.name,
                description=entry.description,
                tier=entry.tier,
                stage=entry.stage,
                owners=owners,
                rights=rights,
            )
        )
    return views


def _gate_view(store: EvidenceStore, gate: Gate) -> GateView:
    return GateView(gate=gate, decisions=store.decisions_for(gate.id))


def collect(
    store: EvidenceStore,
    config: Config,
    scope: Scope,
    now: datetime,
    anchors: list[Anchor],
    *,
    store_check: StoreCheck | None = None,
) -> PackContents:
    """Read everything in ``scope`` from the store, in one pass per kind of record."""
    events = store.events()
    start = Link(seq=0, prev_hash=GENESIS, hash=GENESIS)
    if events:
        first = events[0]
        start = Link(seq=first.seq - 1, prev_hash="", hash=first.prev_hash)
    links = [Link(seq=e.seq, prev_hash=e.prev_hash, hash=e.hash) for e in events]
    head = links[-1] if links else start
    signatures = store.head_signatures(after_seq=max(head.seq - 1, 0))
    head_signature = next((s for s in signatures if (s.seq, s.hash) == (head.seq, head.hash)), None)
    runs = store.list_runs(model=scope.model, since=scope.since, until=scope.until)
    run_ids = {r.id for r in runs}
    run_views = []
    for run in runs:
        artifacts = store.artifacts_for(run.id)
        run_views.append(
            RunView(
                run=run,
                verdicts=store.verdicts_for(run.id),
                artifacts=[(a, artifact_member(a)) for a in artifacts],
            )
        )
    findings = [f for f in store.list_findings(model=scope.model) if f.run_id in run_ids]
    finding_ids = {f.id for f in findings}
    gates = [
        g
        for g in store.list_gates(model=scope.model)
        if g.finding_id in finding_ids or scope.covers(g.model, g.opened_at)
    ]
    waivers = store.list_waivers(model=scope.model)
    finding_views = [
        FindingView(
            finding=f,
            gates=[_gate_view(store, g) for g in gates if g.finding_id == f.id],
            waivers=[w for w in waivers if w.finding_id == f.id],
        )
        for f in findings
    ]
    gate_ids = {g.id for g in gates}
    escalations = [
        e
        for e in store.list_escalations()
        if e.finding_id in finding_ids
        or e.gate_id in gate_ids
        or scope.covers(e.model, e.started_at)
    ]
    notifications = store.list_notifications()
    escalation_views = [
        EscalationView(
            escalation=e,
            deliveries=[
                (n, store.attempts_for(n.id)) for n in notifications if n.escalation_id == e.id
            ],
        )
        for e in escalations
    ]
    chosen = scope.frameworks or framework_ids(config.catalog)
    results = [(rv.run, rv.verdicts) for rv in run_views]
    return PackContents(
        scope=scope,
        created_at=ensure_utc(now),
        chain_start=start,
        chain_head=head,
        anchors=anchors,
        head_signature=head_signature,
        keys=key_entries(events),
        store_check=store_check or StoreCheck(),
        models=model_views(config, scope.model),
        controls=[
            {
                "id": c.id,
                "title": c.title,
                "kind": c.kind,
                "severity": c.severity,
                "warn": c.thresholds.warn,
                "fail": c.thresholds.fail,
                "unit": c.thresholds.unit,
                "clauses": list(c.clauses),
            }
            for c in config.catalog.controls.values()
        ],
        frameworks={fw: framework_view(config.catalog, fw, results) for fw in chosen},
        framework_titles={fw: config.catalog.frameworks[fw].title for fw in chosen},
        runs=run_views,
        findings=finding_views,
        other_gates=[_gate_view(store, g) for g in gates if g.finding_id not in finding_ids],
        escalations=escalation_views,
        actions=[
            a
            for a in store.list_actions(model=scope.model)
            if a.gate_id in gate_ids or scope.covers(a.model, a.created_at)
        ],
        events=[e for e in events if scope.covers(e.model, e.at) or e.model is None],
        links=links,
    )


def artifact_member(artifact: Artifact) -> str:
    """The artifact's path inside a pack: unique per artifact, readable by a person."""
    name = PurePosixPath(artifact.path.replace("\\", "/")).name or artifact.name
    return f"artifacts/{artifact.run_id}/{artifact.id[:8]}-{name}"


# --------------------------------------------------------------------------- writing


class _Member:
    """A zip member being written: hashed and counted as it streams."""

    def __init__(self, archive: zipfile.ZipFile, name: str) -> None:
        self.name = name
        self._handle = archive.open(name, "w", force_zip64=True)
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._digest.update(data)
        self.size += len(data)
        self._handle.write(data)

    def close(self) -> ManifestFile:
        self._handle.close()
        return ManifestFile(sha256=self._digest.hexdigest(), size=self.size)


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(size):
            yield chunk


def _line(item: BaseModel) -> bytes:
    data = item.model_dump(mode="json")
    if isinstance(item, Event):
        data["at"] = format_datetime(item.at)  # the spelling the entry was hashed with
    return (canonical_json(data) + "\n").encode()


def write_pack(
    contents: PackContents,
    out: Path,
    render_index: Callable[[PackContents], str],
    signer: SigningKey | None = None,
) -> Manifest:
    """Stream the members into the zip, then the manifest, signed with ``signer``."""
    members: dict[str, ManifestFile] = {}
    artifacts: dict[str, str] = {}
    missing: list[str] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, chunks: Iterable[bytes]) -> None:
            member = _Member(archive, name)
            for chunk in chunks:
                member.write(chunk)
            members[name] = member.close()

        put("index.html", [render_index(contents).encode("utf-8")])
        put("evidence.jsonl", (_line(e) for e in contents.events))
        put("chain.jsonl", (_line(link) for link in contents.links))
        for view in contents.runs:
            for artifact, name in view.artifacts:
                source = Path(artifact.path)
                if name is None or not source.is_file():
                    missing.append(f"artifact {artifact.id} ({artifact.name}): {artifact.path}")
                    continue
                put(name, _chunks(source))
                artifacts[artifact.id] = name
        manifest = Manifest(
            created_at=contents.created_at,
            scope=contents.scope,
            entry_count=len(contents.links),
            chain_start=contents.chain_start,
            chain_head=contents.chain_head,
            head_signature=contents.head_signature,
            keys=contents.keys,
            anchors=contents.anchors,
            artifacts=artifacts,
            missing_artifacts=missing,
            store_verified=contents.store_check,
            members=dict(sorted(members.items())),
        )
        body = manifest.model_dump(mode="json")
        document: dict[str, Any] = dict(body)
        if signer is not None:
            document["signature"] = {
                "key_id": signer.key_id,
                "signature": signer.sign({"type": MANIFEST_TYPE, "manifest": body}),
            }
        archive.writestr(MANIFEST, json.dumps(document, indent=2, ensure_ascii=False))
    return manifest


# --------------------------------------------------------------------------- verifying


class PackReport(Record):
    ok: bool
    first_broken: str | None = None
    files_checked: int = 0
    entries_checked: int = 0
    artifacts_checked: int = 0
    signed_by: str | None = None
    trusted: bool = False
    chain_head: dict[str, Any] | None = None
    anchors: list[dict[str, Any]] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def verify_pack(source: Path | bytes, trusted: VerifyKey | None = None) -> PackReport:
    """Check a pack with no database (see :mod:`prodcontrol.evidence.packcheck`)."""
    report = packcheck.verify_pack(source, trusted.public if trusted is not None else None)
    data = report.as_dict()
    return PackReport(
        ok=report.ok,
        first_broken=data["first_broken"],
        files_checked=report.files_checked,
        entries_checked=report.entries_checked,
        artifacts_checked=report.artifacts_checked,
        signed_by=report.signed_by,
        trusted=report.trusted,
        chain_head=report.head,
        anchors=report.anchors,
        problems=report.problems,
        notes=report.notes,
    )
