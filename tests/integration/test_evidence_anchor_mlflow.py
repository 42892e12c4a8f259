"""Anchors in a real MLflow tracking store: written by ``evidence anchor``, read back by verify,
and a rewritten chain caught by them even though the database alone looks consistent."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from evidence_forgery import rewrite
from evidence_seed import seeded_store, use_settings
from prodcontrol.adapters.mlflow_anchor import EXPERIMENT, MlflowAnchors
from prodcontrol.cli.app import run
from prodcontrol.errors import UnreachableError
from prodcontrol.evidence import Event
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

    assert not (state / "anchors.jsonl").exists()  # no anchor file set: only MLflow can tell
    events = store.events()
    named = next(e for e in events if e.seq == anchor.seq)  # the entry the anchor names

    def forge(event: Event) -> dict[str, Any] | None:
        return {**event.payload, "forged": True} if event.seq == named.seq else None

    rewrite(sqlite_url, [e for e in events if e.seq >= named.seq], forge)
    assert store.verify().ok  # re-hashed to the end and the head moved: the DB agrees
    capsys.readouterr()
    assert run(["evidence", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["first_broken"].startswith(f"entry {named.seq}: hash ")
    assert "mlflow" in report["first_broken"]
    store.close()


@pytest.mark.slow  # MLflow creates its SQLite tracking schema: about 20 s
def test_a_deleted_anchor_run_is_named(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The operator also has MLflow rights and deletes the anchor run: verify says so."""
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    state = use_settings(monkeypatch, tmp_path, sqlite_url, mlflow_tracking_uri=tracking)
    store, _, _, _ = seeded_store(sqlite_url, state, days=1)
    assert run(["evidence", "anchor", "--json"]) == 0
    [anchor] = MlflowAnchors(tracking).read_anchors()
    MlflowClient(tracking).delete_run(anchor.ref.removeprefix("run "))
    capsys.readouterr()
    assert run(["evidence", "verify", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert f"entry {anchor.seq}: the anchor of " in report["first_broken"]
    assert "was deleted" in report["first_broken"] and anchor.ref in report["first_broken"]
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


@pytest.mark.slow  # MLflow creates its SQLite tracking schema: about 20 s
@pytest.mark.postgres
def test_two_stores_share_one_mlflow_and_each_reads_only_its_anchors(
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Staging on SQLite and production on PostgreSQL anchor into the same tracking server:
    neither's verify trips over the other's anchors, and a rewrite of one (from its very first
    entry, so nothing in its database ties it to its old anchors) is still caught."""
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    staging_url = f"sqlite:///{tmp_path / 'staging' / 'evidence.db'}"
    (tmp_path / "staging").mkdir()

    def verify(where: Path, url: str) -> dict[str, Any]:
        use_settings(monkeypatch, where, url, mlflow_tracking_uri=tracking)
        capsys.readouterr()
        code = run(["evidence", "verify", "--json"])
        report: dict[str, Any] = json.loads(capsys.readouterr().out)
        report["exit"] = code
        return report

    staging_state = use_settings(
        monkeypatch, tmp_path / "staging", staging_url, mlflow_tracking_uri=tracking
    )
    staging, _, _, _ = seeded_store(staging_url, staging_state, days=1)
    assert run(["evidence", "anchor", "--json"]) == 0
    (tmp_path / "prod").mkdir()
    prod_state = use_settings(
        monkeypatch, tmp_path / "prod", postgres_url, mlflow_tracking_uri=tracking
    )
    prod, _, _, _ = seeded_store(postgres_url, prod_state, days=2)  # a longer chain
    assert run(["evidence", "anchor", "--json"]) == 0

    runs = MlflowAnchors(tracking).read_anchors()  # unscoped: every store's anchors
    assert len(runs) == 2
    assert verify(tmp_path / "prod", postgres_url)["exit"] == 0
    assert verify(tmp_path / "staging", staging_url)["exit"] == 0

    events = staging.events()
    rewrite(staging_url, events, lambda e: {**e.payload, "forged": True})
    assert staging.verify().ok  # re-hashed from entry 1: the database agrees with itself
    broken = verify(tmp_path / "staging", staging_url)
    assert broken["exit"] == 1 and "mlflow" in broken["first_broken"]
    assert verify(tmp_path / "prod", postgres_url)["exit"] == 0
    staging.close()
    prod.close()


def test_the_anchor_scope_is_the_database_url_without_its_password(tmp_path: Path) -> None:
    from prodcontrol.adapters.mlflow_anchor import anchor_scope
    from prodcontrol.settings import Settings

    url = "postgresql+psycopg://ops:s3cret@db.internal:5432/evidence"
    scope = anchor_scope(Settings(database_url=url, state_dir=tmp_path))
    assert scope == "postgresql+psycopg://ops@db.internal:5432/evidence"
    assert "s3cret" not in scope
    named = Settings(database_url=url, state_dir=tmp_path, evidence_anchor_scope="prod-eu")
    assert anchor_scope(named) == "prod-eu"
