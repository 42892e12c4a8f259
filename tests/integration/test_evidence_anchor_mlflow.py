"""Anchors in a real MLflow tracking store: written by ``evidence anchor``, read back by verify,
and a rewritten chain caught by them even though the database alone looks consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evidence_seed import seeded_store, use_settings
from prodcontrol.adapters.mlflow_anchor import EXPERIMENT, MlflowAnchors
from prodcontrol.cli.app import run
from prodcontrol.errors import UnreachableError
from prodcontrol.evidence.anchor import Anchor


@pytest.mark.slow  # MLflow creates its SQLite tracking schema: about 20 s
def test_anchor_to_mlflow_and_verify_against_it(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    state = use_settings(monkeypatch, tmp_path, sqlite_url, mlflow_tracking_uri=tracking)
    store, _, _, _ = seeded_store(sqlite_url, state, days=1)
    capsys.readouterr()
    assert run(["evidence", "anchor", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert any(w.startswith("mlflow ") for w in written["written_to"])
    [anchor] = MlflowAnchors(tracking).read_anchors()
    assert (anchor.seq, anchor.hash) == (written["entry"], written["hash"])
    assert EXPERIMENT in anchor.where

    (state / "anchors.jsonl").unlink()  # only MLflow is left to tell
    last = store.events()[-1]
    forged = {**last.payload, "forged": True}
    from evidence_seed import raw_sql
    from prodcontrol.evidence import canonical_json, entry_hash

    digest = entry_hash(
        last.prev_hash,
        last.seq,
        last.at,
        last.kind,
        last.subject_type,
        last.subject_id,
        last.model,
        forged,
    )
    raw_sql(
        sqlite_url,
        "UPDATE pc_events SET payload = :p, hash = :h WHERE seq = :s",
        "UPDATE pc_chain_head SET hash = :h",
        p=canonical_json(forged),
        h=digest,
        s=last.seq,
    )
    assert store.verify().ok  # the last entry re-hashed and the head moved: the DB agrees
    capsys.readouterr()
    assert run(["evidence", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_broken"].startswith(f"entry {last.seq}: hash ")
    assert "mlflow" in report["first_broken"]
    store.close()


def test_an_unreachable_mlflow_is_an_unreachable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    sink = MlflowAnchors("http://127.0.0.1:9")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with pytest.raises(UnreachableError, match=re.escape("MLflow at http://127.0.0.1:9")):
        sink.read_anchors()
    anchor = Anchor.model_validate(
        {"day": "2026-11-25", "seq": 1, "hash": "a" * 64, "written_at": "2026-11-25T00:00Z"}
    )
    with pytest.raises(UnreachableError):
        sink.write_anchor(anchor)
