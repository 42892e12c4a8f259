"""Evidence packs: exported through the CLI, verified offline with no database, and refused after
one changed byte. Plus the framework view with its gaps."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence_seed import Seeded, seeded_store, use_settings
from prodcontrol.cli.app import run
from prodcontrol.evidence.pack import verify_pack


@pytest.fixture
def seeded(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Seeded]:
    state = use_settings(monkeypatch, tmp_path, sqlite_url)
    store, _, _, seeded = seeded_store(sqlite_url, state, days=3)
    store.close()
    yield seeded


def export(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> dict[str, object]:
    capsys.readouterr()
    assert run(["evidence", "export", "--out", str(out), "--json", *args]) == 0
    result: dict[str, object] = json.loads(capsys.readouterr().out)
    return result


def rewrite_member(pack: Path, out: Path, name: str, position: int = 100) -> None:
    """A copy of ``pack`` with one byte of member ``name`` changed (a well-formed zip)."""
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == name:
                data = data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :]
            target.writestr(info, data)


def test_export_then_verify_offline(
    seeded: Seeded,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pack = tmp_path / "pack.zip"
    summary = export(capsys, pack, "--framework", "eu-ai-act")
    assert summary["runs"] == 9 and summary["missing_artifacts"] == []
    with zipfile.ZipFile(pack) as archive:
        names = set(archive.namelist())
        index = archive.read("index.html").decode()
        manifest = json.loads(archive.read("manifest.json"))
    assert {"index.html", "evidence.jsonl", "chain.jsonl", "manifest.json"} <= names
    assert sum(n.startswith("artifacts/") for n in names) == 18
    assert set(manifest["members"]) == names - {"manifest.json"}
    assert manifest["chain_head"]["hash"] in index
    for text in ("fraud-detector", "Chen Wei", "escalation_outcome", "art-72", "ratelimited"):
        assert text in index, text
    # offline: no database, no settings
    monkeypatch.setenv("PRODCONTROL_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    capsys.readouterr()
    assert run(["evidence", "verify", str(pack), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] and report["artifacts_checked"] == 18 and report["files_checked"] == 21


def test_a_pack_with_one_changed_byte_fails(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack.zip"
    export(capsys, pack)
    for member in ("index.html", "evidence.jsonl"):
        changed = tmp_path / f"changed-{member}.zip"
        rewrite_member(pack, changed, member)
        capsys.readouterr()
        assert run(["evidence", "verify", str(changed), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert report["first_broken"].startswith(f"file {member}: sha256 differs")
    flipped = bytearray(pack.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    broken = verify_pack(bytes(flipped))
    assert not broken.ok and broken.first_broken


def test_a_pack_whose_manifest_was_redone_still_fails_on_the_chain(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forger who edits an entry and rewrites the manifest's hashes is caught by the chain."""
    import hashlib

    pack = tmp_path / "pack.zip"
    export(capsys, pack)
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(pack) as source:
        files = {name: source.read(name) for name in source.namelist()}
    lines = files["evidence.jsonl"].decode().splitlines()
    target = next(i for i, line in enumerate(lines) if '"verdict":"fail"' in line)
    lines[target] = lines[target].replace('"verdict":"fail"', '"verdict":"pass"', 1)
    files["evidence.jsonl"] = ("\n".join(lines) + "\n").encode()
    manifest = json.loads(files["manifest.json"])
    manifest["members"]["evidence.jsonl"] = {
        "sha256": hashlib.sha256(files["evidence.jsonl"]).hexdigest(),
        "size": len(files["evidence.jsonl"]),
    }
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    report = verify_pack(forged.read_bytes())
    assert not report.ok
    seq = json.loads(lines[target])["seq"]
    assert report.first_broken is not None
    assert report.first_broken.startswith(f"entry {seq} (verdict.recorded")


def test_export_for_one_model_and_period(
    seeded: Seeded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "fraud.zip"
    summary = export(
        capsys, pack, "--model", "fraud-detector", "--from", "2026-11-03", "--to", "2026-11-04"
    )
    assert summary["runs"] == 2
    assert verify_pack(pack.read_bytes()).ok


def test_framework_view_flags_gaps(seeded: Seeded, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["evidence", "frameworks", "--framework", "nist-ai-rmf", "--json"]) == 0
    rows = {r["clause"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["MEASURE-2.4"]["runs"] == 9 and not rows["MEASURE-2.4"]["gap"]
    assert rows["MEASURE-2.4"]["outcome"] == "fail"
    args = ["evidence", "frameworks", "--framework", "nist-ai-rmf", "--from", "2025-01-01"]
    assert run([*args, "--to", "2025-01-31", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["gap"] and r["outcome"] == "no evidence" for r in rows)
    assert run(["evidence", "frameworks", "--framework", "nope"]) == 2
