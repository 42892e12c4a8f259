"""The identity store port: the in-memory fake and the SQL store (SQLite and PostgreSQL) agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from prodcontrol.adapters.store.identity import SqlIdentityStore
from prodcontrol.adapters.store.migrate import ensure_schema
from prodcontrol.identity.port import IdentityStore
from prodcontrol.identity.tokens import make_token, matches, parse
from prodcontrol.testing import InMemoryIdentityStore

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[IdentityStore]:
    if request.param == "memory":
        yield InMemoryIdentityStore()
        return
    url: str = request.getfixturevalue(f"{request.param}_url")
    ensure_schema(url)
    sql = SqlIdentityStore(url)
    yield sql
    sql.close()


def test_tokens_round_trip_and_revoke_once(store: IdentityStore) -> None:
    assert isinstance(store, IdentityStore)
    new = make_token("dana", issued_by="ivan", issued_at=NOW, expires_at=NOW + timedelta(days=1))
    store.add_token(new.stored)
    token_id, secret = parse(new.text)
    found = store.get_token(token_id)
    assert found == new.stored and matches(found, secret) and not matches(found, secret[:-1] + "x")
    assert store.get_token("000000000000") is None
    assert [t.id for t in store.list_tokens()] == [token_id]
    revoked = store.revoke_token(token_id, "ivan", NOW + timedelta(hours=1))
    assert revoked is not None and revoked.state(NOW) == "revoked"
    again = store.revoke_token(token_id, "mallory", NOW + timedelta(hours=2))
    assert again is not None and again.revoked_by == "ivan"  # the first revocation stands
    assert store.revoke_token("000000000000", "ivan", NOW) is None
    assert new.stored.state(NOW + timedelta(days=1)) == "expired"


def test_the_replay_cache_remembers_then_forgets(store: IdentityStore) -> None:
    assert store.first_time("sig-1", NOW, 600)
    assert not store.first_time("sig-1", NOW + timedelta(seconds=5), 600)
    assert store.first_time("sig-2", NOW + timedelta(seconds=5), 600)
    later = NOW + timedelta(seconds=700)
    assert store.first_time("sig-3", later, 600)  # sweeps the old keys
    assert store.first_time("sig-1", later + timedelta(seconds=1), 600)


def test_decision_credentials_are_kept_per_gate(store: IdentityStore) -> None:
    store.note_credential("g1", "dana", "token:a", NOW)
    store.note_credential("g1", "dana", "token:a", NOW)  # noted twice: kept once
    store.note_credential("g1", "gustav", "slack:U0GUSTAV7", NOW)
    store.note_credential("g2", "dana", "token:a", NOW)
    assert sorted(store.credentials_on("g1")) == [
        ("dana", "token:a"),
        ("gustav", "slack:U0GUSTAV7"),
    ]
    assert store.credentials_on("nope") == []
