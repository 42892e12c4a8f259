"""Evidence packs: a self-contained zip a reviewer reads and verifies offline.

Layout::

    index.html          the human-readable evidence (rendered by the caller, see web.render)
    evidence.jsonl      every log entry in scope, exactly as chained
    chain.jsonl         every link of the whole log (seq, prev_hash, hash): proves continuity
    artifacts/...       the Evidently HTML and JSON reports of the runs in scope
    manifest.json       SHA-256 of every other file, the chain start and head, the anchors

:func:`verify_pack` needs nothing but the zip: the files against the manifest, the links from
start to head, each entry in scope against its link (recomputing its hash), and each artifact
against the hash the log recorded for it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from prodcontrol.catalog.config import Config
from prodcontrol.clock import ensure_utc
from prodcontrol.evidence.anchor import Anchor
from prodcontrol.evidence.chain import GENESIS, canonical_json, hash_of, latest_records
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
    Notification,
    Record,
    Verdict,
    Waiver,
)

FORMAT = "prodcontrol-evidence-pack/1"
MANIFEST = "manifest.json"
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


class Manifest(Record):
    format: str = FORMAT
    created_at: datetime
    scope: Scope
    chain_start: Link = Field(description="the entry the log starts after (seq 0: genesis)")
    chain_head: Link
    anchors: list[Anchor] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="artifact id -> its path in the pack"
    )
    missing_artifacts: list[str] = Field(default_factory=list)
    files: dict[str, ManifestFile]


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
    store: EvidenceStore, config: Config, scope: Scope, now: datetime, anchors: list[Anchor]
) -> PackContents:
    """Read everything in ``scope`` from the store, in one pass per kind of record."""
    events = store.events()
    start = Link(seq=0, prev_hash=GENESIS, hash=GENESIS)
    if events:
        first = events[0]
        start = Link(seq=first.seq - 1, prev_hash="", hash=first.prev_hash)
    links = [Link(seq=e.seq, prev_hash=e.prev_hash, hash=e.hash) for e in events]
    head = links[-1] if links else start
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


def _jsonl(items: Iterable[BaseModel]) -> bytes:
    return "".join(canonical_json(i.model_dump(mode="json")) + "\n" for i in items).encode()


def write_pack(
    contents: PackContents, out: Path, render_index: Callable[[PackContents], str]
) -> Manifest:
    """Write the zip; returns its manifest."""
    files: dict[str, bytes] = {
        "index.html": render_index(contents).encode("utf-8"),
        "evidence.jsonl": _jsonl(contents.events),
        "chain.jsonl": _jsonl(contents.links),
    }
    members: dict[str, str] = {}
    missing: list[str] = []
    for view in contents.runs:
        for artifact, member in view.artifacts:
            source = Path(artifact.path)
            if member is None or not source.is_file():
                missing.append(f"artifact {artifact.id} ({artifact.name}): {artifact.path}")
                continue
            files[member] = source.read_bytes()
            members[artifact.id] = member
    manifest = Manifest(
        created_at=contents.created_at,
        scope=contents.scope,
        chain_start=contents.chain_start,
        chain_head=contents.chain_head,
        anchors=contents.anchors,
        artifacts=members,
        missing_artifacts=missing,
        files={
            name: ManifestFile(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            for name, data in sorted(files.items())
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in sorted(files.items()):
            archive.writestr(name, data)
        archive.writestr(MANIFEST, manifest.model_dump_json(indent=2))
    return manifest


# --------------------------------------------------------------------------- verifying


class PackReport(Record):
    ok: bool
    first_broken: str | None = None
    files_checked: int = 0
    entries_checked: int = 0
    artifacts_checked: int = 0
    chain_head: Link | None = None
    anchors: list[Anchor] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def _broken(problem: str) -> PackReport:
    return PackReport(ok=False, first_broken=problem, problems=[problem])


def verify_pack(data: bytes) -> PackReport:
    """Check a pack with no database: every file, the chain, the entries, the artifacts."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if MANIFEST not in names:
                return _broken(f"{MANIFEST} is missing: this is not an evidence pack")
            files = {name: archive.read(name) for name in names}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        return _broken(f"the zip itself is damaged ({exc}): it was changed after export")
    try:
        manifest = Manifest.model_validate_json(files[MANIFEST])
    except ValidationError as exc:
        return _broken(f"{MANIFEST} is not a valid manifest: {exc.errors()[0]['msg']}")
    problems = _file_problems(manifest, files)
    _, events, entry_problems = _chain_problems(manifest, files)
    problems += entry_problems
    problems += [
        f"artifact {m}: missing when the pack was exported" for m in manifest.missing_artifacts
    ]
    artifact_problems, checked = _artifact_problems(manifest, events, files)
    problems += artifact_problems
    return PackReport(
        ok=not problems,
        first_broken=problems[0] if problems else None,
        files_checked=len(manifest.files),
        entries_checked=len(events),
        artifacts_checked=checked,
        chain_head=manifest.chain_head,
        anchors=manifest.anchors,
        problems=problems,
    )


def _file_problems(manifest: Manifest, files: dict[str, bytes]) -> list[str]:
    problems = []
    for name, expected in manifest.files.items():
        data = files.get(name)
        if data is None:
            problems.append(f"file {name}: listed in the manifest but missing from the pack")
        elif hashlib.sha256(data).hexdigest() != expected.sha256:
            problems.append(f"file {name}: sha256 differs from the manifest (the file was changed)")
    problems += [
        f"file {name}: in the pack but not in the manifest (added after export)"
        for name in sorted(set(files) - set(manifest.files) - {MANIFEST})
    ]
    return problems


def _read_jsonl(
    data: bytes, cls: type[Link] | type[Event], name: str
) -> tuple[list[Any], list[str]]:
    items: list[Any] = []
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        try:
            items.append(cls.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            return items, [f"{name} line {number}: not a valid entry"]
    return items, []


def _chain_problems(
    manifest: Manifest, files: dict[str, bytes]
) -> tuple[list[Link], list[Event], list[str]]:
    links, problems = _read_jsonl(files.get("chain.jsonl", b""), Link, "chain.jsonl")
    events, more = _read_jsonl(files.get("evidence.jsonl", b""), Event, "evidence.jsonl")
    problems += more
    seq, head = manifest.chain_start.seq, manifest.chain_start.hash
    for link in links:
        if link.seq != seq + 1 or link.prev_hash != head:
            problems.append(
                f"entry {link.seq}: does not follow entry {seq} in chain.jsonl (entries were "
                "removed, inserted or reordered)"
            )
            break
        seq, head = link.seq, link.hash
    if (seq, head) != (manifest.chain_head.seq, manifest.chain_head.hash):
        problems.append(
            f"entry {seq}: the chain ends here but the manifest's head is entry "
            f"{manifest.chain_head.seq}"
        )
    by_seq = {link.seq: link for link in links}
    for event in events:
        link = by_seq.get(event.seq)
        if hash_of(event) != event.hash or link is None or link.hash != event.hash:
            problems.append(
                f"entry {event.seq} ({event.kind} {event.subject_type} {event.subject_id}): "
                "its content does not match its hash in the chain (the entry was edited)"
            )
            break
    return links, events, problems


def _artifact_problems(
    manifest: Manifest, events: list[Event], files: dict[str, bytes]
) -> tuple[list[str], int]:
    problems, checked = [], 0
    for (kind, ident), record in latest_records(events).items():
        member = manifest.artifacts.get(ident)
        if kind != "artifact" or member is None:
            continue
        checked += 1
        data = files.get(member)
        if data is None or hashlib.sha256(data).hexdigest() != record.get("sha256"):
            problems.append(
                f"artifact {ident} ({record.get('name')}): {member} does not match the sha256 "
                "the log recorded for it"
            )
    return problems, checked
