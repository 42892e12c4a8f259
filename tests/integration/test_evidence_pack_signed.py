"""Signed evidence packs: exported through the CLI from a signed store, checked offline by
``prodcontrol evidence verify PACK`` and by the standalone ``tools/verify_pack.py`` (run in a
subprocess, as a regulator would, with only ``cryptography`` and ``rfc8785``).

The forgeries of issue 16: drop every decision line from ``evidence.jsonl`` and redo the
manifest; edit ``index.html``; add a second ``index.html``; export a store that fails verify.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence_forgery import sql
from evidence_seed import seeded_store, use_settings
from prodcontrol.cli.app import run
from prodcontrol.evidence import packcheck
from prodcontrol.evidence.pack import verify_pack
from prodcontrol.evidence.signing import SigningKey, VerifyKey

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "verify_pack.py"


class Packs:
    def __init__(self, tmp: Path, key: Path, url: str) -> None:
        self.tmp, self.key, self.url = tmp, key, url
        self.public = key.with_name(key.name + ".pub")


@pytest.fixture
def packs(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Packs]:
    key_path = tmp_path / "keys" / "evidence.key"
    key = SigningKey.generate()
    key.write(key_path)
    anchor_file = tmp_path / "anchor-host" / "anchors.jsonl"
    state = use_settings(
        monkeypatch,
        tmp_path,
        database_url,
        evidence_signing_key=str(key_path),
        evidence_anchor_file=str(anchor_file),
    )
    store, _, _, _ = seeded_store(database_url, state, days=2, signer=key)
    assert run(["evidence", "anchor", "--json"]) == 0
    store.close()
    yield Packs(tmp_path, key_path, database_url)


def export(capsys: pytest.CaptureFixture[str], out: Path, *args: str) -> dict[str, Any]:
    capsys.readouterr()
    code = run(["evidence", "export", "--out", str(out), "--json", *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result: dict[str, Any] = json.loads(captured.out)
    return result


def standalone(pack: Path, public: Path | None) -> tuple[int, dict[str, Any]]:
    """The regulator's run: a fresh interpreter, isolated from prodcontrol's source tree."""
    args = [sys.executable, "-I", str(TOOL), str(pack), "--json"]
    if public is not None:
        args += ["--public-key", str(public)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, json.loads(done.stdout)


def rebuild(pack: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """A copy of ``pack`` whose members ``change`` rewrote, with the manifest's sizes and
    hashes redone to match (what a forger without the key can do)."""
    with zipfile.ZipFile(pack) as source:
        files = {name: source.read(name) for name in source.namelist()}
    change(files)
    manifest = json.loads(files["manifest.json"])
    manifest["members"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in sorted(files.items())
        if name != "manifest.json"
    }
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_a_signed_pack_verifies_offline_and_with_the_standalone_tool(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = packs.tmp / "pack.zip"
    summary = export(capsys, pack)
    assert summary["signed_by"] and summary["store_verified"] is True
    with zipfile.ZipFile(pack) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        index = archive.read("index.html").decode()
    assert set(manifest["members"]) == {*archive.namelist()} - {"manifest.json"}
    assert manifest["entry_count"] == manifest["chain_head"]["seq"]
    assert manifest["head_signature"]["seq"] == manifest["chain_head"]["seq"]
    assert manifest["anchors"] and manifest["signature"]["key_id"] == summary["signed_by"]
    assert f"head signed by key {summary['signed_by']}" in index
    capsys.readouterr()
    assert run(["evidence", "verify", str(pack), "--public-key", str(packs.public), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["intact"] and report["trusted_key"] and report["artifacts_checked"] == 12
    code, result = standalone(pack, packs.public)
    assert code == 0, result
    assert result["intact"] and result["trusted"] and result["entries_checked"] > 50
    code, result = standalone(pack, None)  # no key given: intact, and says which key to compare
    assert code == 0 and any(summary["signed_by"] in note for note in result["notes"])


def test_dropping_every_decision_and_redoing_the_manifest_is_refused(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, forged = packs.tmp / "pack.zip", packs.tmp / "forged.zip"
    export(capsys, pack)

    def drop_decisions(files: dict[str, bytes]) -> None:
        lines = files["evidence.jsonl"].decode().splitlines()
        kept = [line for line in lines if '"subject_type":"decision"' not in line]
        assert len(kept) < len(lines)
        files["evidence.jsonl"] = ("\n".join(kept) + "\n").encode()

    rebuild(pack, forged, drop_decisions)
    code, result = standalone(forged, packs.public)
    assert code == 1
    assert result["first_broken"].startswith("manifest.json: its signature does not verify")
    assert not verify_pack(forged, VerifyKey.load(packs.public)).ok


def test_an_edited_index_html_is_refused_even_with_a_redone_manifest(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, forged = packs.tmp / "pack.zip", packs.tmp / "forged.zip"
    export(capsys, pack)

    def edit(files: dict[str, bytes]) -> None:
        files["index.html"] = files["index.html"].replace(b"fraud-detector", b"fraud-detectorr")

    rebuild(pack, forged, edit)
    report = verify_pack(forged, VerifyKey.load(packs.public))
    assert not report.ok and "signature does not verify" in str(report.first_broken)


def test_a_second_index_html_member_is_refused(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    pack, forged = packs.tmp / "pack.zip", packs.tmp / "forged.zip"
    export(capsys, pack)
    with zipfile.ZipFile(pack) as source, zipfile.ZipFile(forged, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        with pytest.warns(UserWarning, match="Duplicate name"):
            target.writestr("index.html", "<h1>everything passed</h1>")
    code, result = standalone(forged, packs.public)
    assert code == 1
    assert result["first_broken"] == (
        "member index.html: appears twice in the zip (a second copy was added)"
    )


def test_missing_and_extra_members_are_refused(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = packs.tmp / "pack.zip"
    export(capsys, pack)
    with zipfile.ZipFile(pack) as source:
        files = {name: source.read(name) for name in source.namelist()}
    report_file = next(n for n in files if n.startswith("artifacts/"))
    for name, change in (
        ("missing", lambda f: f.pop(report_file)),
        ("extra", lambda f: f.__setitem__("notes.txt", b"added later")),
    ):
        forged = packs.tmp / f"{name}.zip"
        copy = dict(files)
        change(copy)
        with zipfile.ZipFile(forged, "w") as archive:
            for member, data in copy.items():
                archive.writestr(member, data)
        report = verify_pack(forged, VerifyKey.load(packs.public))
        expected = (
            f"file {report_file}: listed in the manifest but missing"
            if name == "missing"
            else "file notes.txt: in the pack but not in the manifest"
        )
        assert not report.ok and any(p.startswith(expected) for p in report.problems), name


def test_oversized_members_are_refused_before_anything_is_read(
    packs: Packs, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip bomb: declared sizes are checked first, and members are read in bounded chunks."""
    pack = packs.tmp / "pack.zip"
    export(capsys, pack)
    bomb = packs.tmp / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", b"{}")
        archive.writestr("evidence.jsonl", b"\n" * (8 << 20))  # 8 MiB of newlines, tiny on disk
    monkeypatch.setattr(packcheck, "MAX_MEMBER_BYTES", 4 << 20)
    report = verify_pack(bomb)
    assert not report.ok and "evidence.jsonl" in str(report.first_broken)
    assert "over the limit" in str(report.first_broken)
    monkeypatch.setattr(packcheck, "MAX_MEMBERS", 5)
    assert "at most 5" in str(verify_pack(pack).first_broken)


def test_a_broken_store_is_not_exported_unless_allowed_and_then_says_so(
    packs: Packs, capsys: pytest.CaptureFixture[str]
) -> None:
    sql(packs.url, "UPDATE pc_verdicts SET verdict = 'pass' WHERE verdict = 'fail'")
    pack = packs.tmp / "broken.zip"
    capsys.readouterr()
    assert run(["evidence", "export", "--out", str(pack)]) == 2
    assert "refusing to export: the evidence store fails verify" in capsys.readouterr().err
    assert not pack.exists()
    summary = export(capsys, pack, "--allow-broken")
    assert summary["store_verified"] is False
    with zipfile.ZipFile(pack) as archive:
        index = archive.read("index.html").decode()
    first_page = index[: index.index("<h1>")]
    assert "FAILED verification" in first_page and "--allow-broken" in first_page
    code, result = standalone(pack, packs.public)
    assert code == 1
    assert result["first_broken"].startswith("the evidence store failed verify when this pack")


def test_manifest_anchors_are_compared_with_the_chain(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An unsigned pack can be rewritten whole; its anchors still have to agree with its chain."""
    anchor_file = tmp_path / "anchor-host" / "anchors.jsonl"
    state = use_settings(monkeypatch, tmp_path, database_url, evidence_anchor_file=str(anchor_file))
    store, _, _, _ = seeded_store(database_url, state, days=1)
    assert run(["evidence", "anchor", "--json"]) == 0
    store.close()
    pack, forged = tmp_path / "pack.zip", tmp_path / "forged.zip"
    export(capsys, pack)
    assert verify_pack(pack).ok
    with zipfile.ZipFile(pack) as source:
        files = {name: source.read(name) for name in source.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest["anchors"][0]["hash"] = "f" * 64
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    code, result = standalone(forged, None)
    assert code == 1
    seq = manifest["anchors"][0]["seq"]
    assert (
        result["first_broken"]
        == f"entry {seq}: its hash differs from the anchor in file {anchor_file.resolve()}"
    )
    assert any("unsigned" in note for note in result["notes"])


def test_the_standalone_verifier_is_the_packaged_one_and_needs_no_prodcontrol() -> None:
    packaged = ROOT / "src" / "prodcontrol" / "evidence" / "packcheck.py"
    assert TOOL.read_text() == packaged.read_text(), "copy packcheck.py to tools/verify_pack.py"
    imports = [
        line.split()[1]
        for line in packaged.read_text().splitlines()
        if line.startswith(("import ", "from "))
    ]
    third_party = {name.split(".")[0] for name in imports} - set(sys.stdlib_module_names)
    assert third_party == {"cryptography", "rfc8785"}
