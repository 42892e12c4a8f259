#!/usr/bin/env python3
"""Verify a prodcontrol evidence pack without prodcontrol: Python 3.11+, cryptography, rfc8785.

    pip install cryptography rfc8785
    python verify_pack.py pack.zip --public-key evidence.key.pub     # exit 0 intact, 1 not

This file is self-contained on purpose (``tools/verify_pack.py`` in the repository is a copy of
it, and ``prodcontrol evidence verify PACK`` runs the same code): a regulator can read it in one
sitting and run it on a machine that trusts nothing else from the company. It checks:

1. the zip: no duplicate or unsafe member names, bounded member count and sizes (no zip bomb);
2. ``manifest.json``: its Ed25519 signature over RFC 8785 JSON, by the public key you were given
   (without one it says which key signed, so you can compare the fingerprint out of band);
3. every member: listed in the manifest, none missing, none extra, each with its size and
   SHA-256 (``index.html`` is covered by the signature this way);
4. the chain: ``chain.jsonl`` links follow one another from the start to the signed head; each
   entry of ``evidence.jsonl`` re-hashes (RFC 8785, or the legacy format 1) to its link;
5. the head signature, the key timeline (each rotation endorsed by the key it replaces);
6. the anchors listed in the manifest against the chain, and each report file against the hash
   the log recorded for it; and that the store verified when the pack was exported.

Members are streamed: nothing is read into memory whole except the manifest.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "prodcontrol-evidence-pack/2"
MANIFEST = "manifest.json"
HEAD_TYPE = "prodcontrol.chain-head/1"
ROTATION_TYPE = "prodcontrol.key-rotation/1"
MANIFEST_TYPE = "prodcontrol.pack-manifest/2"
KEY_KINDS = ("evidence.key_added", "evidence.key_rotated")
GENESIS = "0" * 64
MAX_MEMBERS = 200_000
MAX_MEMBER_BYTES = 2 << 30  # 2 GiB: far above any Evidently report or log of a real fleet
MAX_TOTAL_BYTES = 16 << 30
MAX_MANIFEST_BYTES = 256 << 20
MAX_LINE_BYTES = 64 << 20
MAX_PROBLEMS = 50
CHUNK = 1 << 20


class PackProblem(Exception):
    """The pack cannot be checked any further."""


def canonical(value: Any) -> bytes:
    return rfc8785.dumps(value)


def legacy(value: Any) -> bytes:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def entry_hash(event: dict[str, Any]) -> str:
    """The hash of one log entry: SHA-256 of the previous hash and the entry's canonical body."""
    fmt = event.get("format", 2)
    body: dict[str, Any] = {
        k: event[k] for k in ("seq", "at", "kind", "subject_type", "subject_id", "model", "payload")
    }
    if fmt == 1:
        encoded = legacy(body)
    elif fmt == 2:
        encoded = canonical({**body, "format": 2})
    else:
        raise PackProblem(f"entry {event.get('seq')}: unknown evidence format {fmt}")
    return hashlib.sha256(event["prev_hash"].encode() + encoded).hexdigest()


def public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))


def key_id_of(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed(key: Ed25519PublicKey, document: dict[str, Any], signature: str | None) -> bool:
    if not signature:
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(document))
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise PackProblem(f"{path}: not an Ed25519 public key")
    return key


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.files_checked = 0
        self.entries_checked = 0
        self.artifacts_checked = 0
        self.signed_by: str | None = None
        self.trusted = False
        self.head: dict[str, Any] | None = None
        self.anchors: list[dict[str, Any]] = []

    def fail(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.ok,
            "signed_by": self.signed_by,
            "trusted": self.trusted,
            "files_checked": self.files_checked,
            "entries_checked": self.entries_checked,
            "artifacts_checked": self.artifacts_checked,
            "head": self.head,
            "anchors": self.anchors,
            "first_broken": self.problems[0] if self.problems else None,
            "problems": self.problems,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- the zip


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise PackProblem(f"the zip has {len(infos)} members; a pack has at most {MAX_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name or not name:
            raise PackProblem(f"member {name!r}: an unsafe name; packs use plain relative paths")
        if name in members:
            raise PackProblem(f"member {name}: appears twice in the zip (a second copy was added)")
        if info.file_size > MAX_MEMBER_BYTES:
            raise PackProblem(f"member {name}: {info.file_size} bytes is over the limit")
        total += info.file_size
        members[name] = info
    if total > MAX_TOTAL_BYTES:
        raise PackProblem(f"the members add up to {total} bytes, over the limit")
    return members


def _digest(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(info) as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            size += len(chunk)
            if size > info.file_size:
                raise PackProblem(f"member {info.filename}: longer than the zip says")
            digest.update(chunk)
    return digest.hexdigest(), size


def _lines(handle: IO[bytes], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(handle, 1):
        if len(raw) > MAX_LINE_BYTES:
            raise PackProblem(f"{name} line {number}: longer than {MAX_LINE_BYTES} bytes")
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            raise PackProblem(f"{name} line {number}: not JSON") from None
        if not isinstance(item, dict):
            raise PackProblem(f"{name} line {number}: not an entry")
        yield number, item


# --------------------------------------------------------------------------- the checks


def _manifest(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict[str, Any]:
    info = members.get(MANIFEST)
    if info is None:
        raise PackProblem(f"{MANIFEST} is missing: this is not an evidence pack")
    if info.file_size > MAX_MANIFEST_BYTES:
        raise PackProblem(f"{MANIFEST} is over the limit")
    try:
        manifest = json.loads(archive.read(info))
    except ValueError:
        raise PackProblem(f"{MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise PackProblem(f"{MANIFEST}: format {found!r} is not {FORMAT}; re-export the pack")
    return manifest


def _keys(manifest: dict[str, Any], report: Report) -> dict[str, tuple[int, Ed25519PublicKey]]:
    """The key timeline: id -> (seq it took effect, key); rotations must be endorsed."""
    keys: dict[str, tuple[int, Ed25519PublicKey]] = {}
    current: str | None = None
    for entry in sorted(manifest.get("keys") or [], key=lambda k: k.get("seq", 0)):
        try:
            key = public_key(entry["public_key"])
        except (KeyError, ValueError):
            report.fail(f"key entry {entry.get('seq')}: not an Ed25519 public key")
            continue
        if key_id_of(key) != entry.get("key_id"):
            report.fail(f"key entry {entry.get('seq')}: its id does not match its key")
            continue
        if current is not None:
            document = {
                "type": ROTATION_TYPE,
                "key_id": entry["key_id"],
                "public_key": entry["public_key"],
                "previous_key_id": entry.get("previous_key_id"),
            }
            previous = keys[current][1]
            if entry.get("previous_key_id") != current or not signed(
                previous, document, entry.get("endorsement")
            ):
                report.fail(
                    f"key entry {entry.get('seq')}: key {entry['key_id']} is not endorsed by "
                    f"the key it replaces ({current})"
                )
        keys[entry["key_id"]] = (int(entry.get("seq", 0)), key)
        current = entry["key_id"]
    return keys


def _in_force(keys: dict[str, tuple[int, Ed25519PublicKey]], seq: int) -> str | None:
    best: tuple[int, str] | None = None
    for key_id, (since, _) in keys.items():
        if since <= seq and (best is None or since > best[0]):
            best = (since, key_id)
    return best[1] if best else None


def _signatures(
    manifest: dict[str, Any],
    keys: dict[str, tuple[int, Ed25519PublicKey]],
    trusted: Ed25519PublicKey | None,
    report: Report,
) -> None:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    signature = manifest.get("signature") or {}
    head = manifest.get("chain_head") or {}
    head_signature = manifest.get("head_signature")
    trusted_id = key_id_of(trusted) if trusted is not None else None
    if not keys and not signature:
        report.notes.append("the pack is unsigned: its files are only as trustworthy as its source")
        if trusted is not None:
            report.fail(f"the pack is unsigned, but you expected key {trusted_id}")
        return
    key_id = signature.get("key_id")
    found = keys.get(str(key_id))
    report.signed_by = key_id
    if found is None or not signed(
        found[1], {"type": MANIFEST_TYPE, "manifest": body}, signature.get("signature")
    ):
        report.fail(f"{MANIFEST}: its signature does not verify (the manifest was changed)")
        return
    if _in_force(keys, int(head.get("seq", 0))) != key_id:
        report.fail(f"{MANIFEST}: signed by key {key_id}, not the key in force at the head")
    if not isinstance(head_signature, dict):
        report.fail("the chain head carries no signature")
    else:
        document = {
            "type": HEAD_TYPE,
            "seq": head_signature.get("seq"),
            "hash": head_signature.get("hash"),
            "key_id": head_signature.get("key_id"),
            "from_seq": head_signature.get("from_seq"),
        }
        head_key = keys.get(str(head_signature.get("key_id")))
        if (head_signature.get("seq"), head_signature.get("hash")) != (
            head.get("seq"),
            head.get("hash"),
        ):
            report.fail("the head signature is for another head than the manifest's")
        elif head_key is None or not signed(head_key[1], document, head_signature.get("signature")):
            report.fail(f"entry {head.get('seq')}: the head signature does not verify")
    if trusted is not None:
        report.trusted = trusted_id in keys
        if not report.trusted:
            report.fail(
                f"wrong key: the pack is signed by {sorted(keys)}, you expected {trusted_id}"
            )
    else:
        report.notes.append(
            f"signed by key {key_id}: compare this fingerprint with the one the company "
            "published, or pass --public-key"
        )


def _files(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    manifest: dict[str, Any],
    report: Report,
) -> dict[str, str]:
    listed: dict[str, Any] = manifest.get("members") or {}
    digests: dict[str, str] = {}
    for name in sorted(set(listed) - set(members)):
        report.fail(f"file {name}: listed in the manifest but missing from the pack")
    for name in sorted(set(members) - set(listed) - {MANIFEST}):
        report.fail(f"file {name}: in the pack but not in the manifest (added after export)")
    for name in sorted(set(listed) & set(members)):
        expected = listed[name]
        if members[name].file_size != expected.get("size"):
            report.fail(
                f"file {name}: {members[name].file_size} bytes, the manifest says "
                f"{expected.get('size')}"
            )
            continue
        digest, _ = _digest(archive, members[name])
        digests[name] = digest
        if digest != expected.get("sha256"):
            report.fail(f"file {name}: sha256 differs from the manifest (the file was changed)")
        report.files_checked += 1
    return digests


def _chain(
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    manifest: dict[str, Any],
    report: Report,
) -> dict[str, dict[str, Any]]:
    """Links from start to head, each entry against its link; returns artifact records."""
    start, head = manifest.get("chain_start") or {}, manifest.get("chain_head") or {}
    if "chain.jsonl" not in members or "evidence.jsonl" not in members:
        report.fail("chain.jsonl or evidence.jsonl is missing")
        return {}
    artifacts: dict[str, dict[str, Any]] = {}
    seq, digest = int(start.get("seq", 0)), str(start.get("hash", GENESIS))
    count = 0
    with (
        archive.open(members["chain.jsonl"]) as links,
        archive.open(members["evidence.jsonl"]) as ev,
    ):
        events = _lines(ev, "evidence.jsonl")
        pending = next(events, None)
        for _, link in _lines(links, "chain.jsonl"):
            if link.get("seq") != seq + 1 or link.get("prev_hash") != digest:
                report.fail(
                    f"entry {link.get('seq')}: does not follow entry {seq} in chain.jsonl "
                    "(entries were removed, inserted or reordered)"
                )
                return artifacts
            seq, digest = int(link["seq"]), str(link["hash"])
            count += 1
            while pending is not None and pending[1].get("seq", 0) <= seq:
                _, event = pending
                if (
                    event.get("seq") != seq
                    or event.get("hash") != digest
                    or entry_hash(event) != digest
                ):
                    report.fail(
                        f"entry {event.get('seq')} ({event.get('kind')} {event.get('subject_type')}"
                        f" {event.get('subject_id')}): its content does not match its hash in the "
                        "chain (the entry was edited)"
                    )
                    return artifacts
                report.entries_checked += 1
                record = (event.get("payload") or {}).get("record")
                if event.get("subject_type") == "artifact" and isinstance(record, dict):
                    artifacts[str(event.get("subject_id"))] = record
                pending = next(events, None)
        if pending is not None:
            report.fail(f"entry {pending[1].get('seq')}: in evidence.jsonl but not in the chain")
    if (seq, digest) != (head.get("seq"), head.get("hash")):
        report.fail(
            f"entry {seq}: the chain ends here but the manifest's head is entry {head.get('seq')}"
        )
    if count != manifest.get("entry_count"):
        report.fail(
            f"chain.jsonl has {count} entries; the manifest says {manifest.get('entry_count')}"
        )
    return artifacts


def _anchors_and_artifacts(  # noqa: PLR0912, PLR0917 - one pass over what the manifest lists
    manifest: dict[str, Any],
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    digests: dict[str, str],
    artifacts: dict[str, dict[str, Any]],
    report: Report,
) -> None:
    start, head = manifest.get("chain_start") or {}, manifest.get("chain_head") or {}
    hashes: dict[int, str] = {}
    if "chain.jsonl" in members:
        wanted = {int(a.get("seq", 0)) for a in manifest.get("anchors") or []}
        with archive.open(members["chain.jsonl"]) as links:
            for _, link in _lines(links, "chain.jsonl"):
                if link.get("seq") in wanted:
                    hashes[int(link["seq"])] = str(link.get("hash"))
    for anchor in manifest.get("anchors") or []:
        seq = int(anchor.get("seq", 0))
        where = anchor.get("where") or "an anchor sink"
        report.anchors.append({"seq": seq, "hash": anchor.get("hash"), "where": where})
        if anchor.get("deleted"):
            report.fail(f"entry {seq}: its anchor in {where} was deleted")
        elif seq <= int(start.get("seq", 0)):
            continue
        elif seq > int(head.get("seq", 0)):
            report.fail(
                f"entry {seq}: anchored in {where}, but the pack's chain ends at "
                f"{head.get('seq')}: entries were removed from the end"
            )
        elif hashes.get(seq) != anchor.get("hash"):
            report.fail(f"entry {seq}: its hash differs from the anchor in {where}")
    for ident, member in (manifest.get("artifacts") or {}).items():
        record = artifacts.get(ident)
        if record is None:
            continue
        report.artifacts_checked += 1
        if digests.get(member) != record.get("sha256"):
            report.fail(
                f"artifact {ident} ({record.get('name')}): {member} does not match the "
                "sha256 the log recorded for it"
            )
    for missing in manifest.get("missing_artifacts") or []:
        report.fail(f"artifact {missing}: missing when the pack was exported")
    verified = manifest.get("store_verified") or {}
    if not verified.get("ok", False):
        first = (verified.get("problems") or ["(no detail)"])[0]
        report.fail(f"the evidence store failed verify when this pack was exported: {first}")


def verify_pack(source: Path | bytes, trusted: Ed25519PublicKey | None = None) -> Report:
    report = Report()
    handle: Any = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with zipfile.ZipFile(handle) as archive:
            members = _members(archive)
            manifest = _manifest(archive, members)
            report.head = manifest.get("chain_head")
            keys = _keys(manifest, report)
            _signatures(manifest, keys, trusted, report)
            digests = _files(archive, members, manifest, report)
            artifacts = _chain(archive, members, manifest, report)
            _anchors_and_artifacts(manifest, archive, members, digests, artifacts, report)
    except PackProblem as exc:
        report.fail(str(exc))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        report.fail(f"the zip itself is damaged ({type(exc).__name__}: {exc})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a prodcontrol evidence pack offline.")
    parser.add_argument("pack", type=Path)
    parser.add_argument("--public-key", type=Path, help="the company's evidence key (PEM .pub)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    trusted = load_public_key(args.public_key) if args.public_key else None
    report = verify_pack(args.pack, trusted)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))  # noqa: T201 - a command-line tool
    else:
        print(f"{args.pack}: {'intact' if report.ok else 'BROKEN'}")  # noqa: T201
        for line in report.problems:
            print(f"  broken: {line}")  # noqa: T201
        for line in report.notes:
            print(f"  note: {line}")  # noqa: T201
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
