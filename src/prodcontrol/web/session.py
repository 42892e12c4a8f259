"""Signed browser sessions and CSRF tokens bound to them, both with an expiry.

A session is an HMAC-signed cookie (key per process: a restart signs everyone out) naming the
person and the credential it was opened with; nothing secret is in it, and a personal token's
revocation is checked on every request because the credential names the token. A CSRF token is
an HMAC over the session id and its own expiry, so a form is good for one session and one hour.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

SESSION_COOKIE = "prodcontrol_session"
SESSION_TTL = timedelta(hours=8)
CSRF_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class Session:
    sid: str
    person: str | None
    credential: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Makes and checks session cookies and CSRF tokens with one random per-process key."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _mac(self, purpose: str, data: str) -> str:
        return hmac.new(self._key, f"{purpose}|{data}".encode(), hashlib.sha256).hexdigest()

    def session_cookie(
        self, person: str | None, credential: str, now: datetime
    ) -> tuple[str, Session]:
        session = Session(secrets.token_hex(16), person, credential, now + SESSION_TTL)
        body = _b64(
            json.dumps(
                [session.sid, person, credential, int(session.expires_at.timestamp())]
            ).encode()
        )
        return f"{body}.{self._mac('session', body)}", session

    def read_session(self, cookie: str, now: datetime) -> Session | None:
        """The session in a cookie, or None when it is forged, malformed or expired."""
        body, _, mac = cookie.partition(".")
        if not body or not hmac.compare_digest(self._mac("session", body), mac):
            return None
        try:
            sid, person, credential, expires = json.loads(_unb64(body))
            expires_at = datetime.fromtimestamp(int(expires), tz=now.tzinfo)
        except (ValueError, TypeError):
            return None
        if expires_at <= now or not isinstance(credential, str):
            return None
        return Session(
            str(sid), person if isinstance(person, str) else None, credential, expires_at
        )

    def csrf_token(self, bound_to: str, now: datetime) -> str:
        expires = int((now + CSRF_TTL).timestamp())
        return f"{expires}.{self._mac('csrf', f'{bound_to}|{expires}')}"

    def csrf_problem(self, bound_to: str, token: str, now: datetime) -> str | None:
        """Why ``token`` is not good for ``bound_to`` now, or None when it is."""
        expires, _, mac = token.partition(".")
        if not expires.isdigit() or not hmac.compare_digest(
            self._mac("csrf", f"{bound_to}|{expires}"), mac
        ):
            return "the form came from another site or another session"
        if int(expires) <= now.timestamp():
            return "the form is more than an hour old"
        return None
