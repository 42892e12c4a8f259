"""The personal token format and hash: shown once, stored salted, anything odd is malformed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from prodcontrol.identity.tokens import MalformedCredential, make_token, matches, parse

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_a_token_parses_and_its_hash_matches_only_its_secret() -> None:
    one = make_token("dana", issued_by="ivan", issued_at=NOW, expires_at=NOW + timedelta(days=1))
    two = make_token("dana", issued_by="ivan", issued_at=NOW, expires_at=NOW + timedelta(days=1))
    token_id, secret = parse(one.text)
    assert token_id == one.stored.id and matches(one.stored, secret)
    assert secret not in one.stored.model_dump_json()
    assert one.stored.salt != two.stored.salt and not matches(two.stored, secret)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dana",
        "Bearer pct_x",
        "pct_ABCDEF012345_" + "a" * 43,
        "pct_abcdef012345_" + "a" * 42,
        "pct_abcdef012345_" + "é" * 43,
        "pct_abcdef012345_" + "a" * 42 + "\x00",
    ],
)
def test_anything_else_is_malformed(text: str) -> None:
    with pytest.raises(MalformedCredential):
        parse(text)
