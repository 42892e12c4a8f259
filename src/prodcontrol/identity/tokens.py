"""Personal tokens: ``pct_<id>_<secret>``, shown once, stored as a salted scrypt hash.

The id is public (it names the token in ``tokens list`` and in the evidence); the secret never
leaves the person who got it. Anything that does not look like a token is a
:class:`MalformedCredential` before any lookup, so odd bytes in a header never reach the store.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

PREFIX = "pct_"
_FORMAT = re.compile(r"pct_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# scrypt cost: 16 MiB and ~50 ms per check on this machine; results are cached per process
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class MalformedCredential(ValueError):
    """The text offered as a credential cannot be one (wrong shape, non-ASCII, empty)."""


class PersonalToken(BaseModel):
    """A stored token: everything but the secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    person: str
    salt: str
    hash: str
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True)
class NewToken:
    """A freshly made token: ``text`` is given to the person once, ``stored`` is kept."""

    text: str
    stored: PersonalToken


def hash_secret(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(
        secret.encode("ascii"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return digest.hex()


def make_token(
    person: str, *, issued_by: str, issued_at: datetime, expires_at: datetime
) -> NewToken:
    token_id, secret, salt = (
        secrets.token_hex(6),
        secrets.token_urlsafe(32),
        secrets.token_bytes(16),
    )
    stored = PersonalToken(
        id=token_id,
        person=person,
        salt=salt.hex(),
        hash=hash_secret(secret, salt),
        issued_at=issued_at,
        expires_at=expires_at,
        issued_by=issued_by,
    )
    return NewToken(text=f"{PREFIX}{token_id}_{secret}", stored=stored)


def parse(text: str) -> tuple[str, str]:
    """``(token id, secret)`` of a token's text, or MalformedCredential."""
    candidate = text.strip()
    if not candidate.isascii():
        raise MalformedCredential("a personal token is plain ASCII")
    found = _FORMAT.fullmatch(candidate)
    if found is None:
        raise MalformedCredential(
            "not a personal token (they look like pct_<12 hex>_<43 characters>)"
        )
    return found.group(1), found.group(2)


def matches(stored: PersonalToken, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(secret, bytes.fromhex(stored.salt)), stored.hash)
