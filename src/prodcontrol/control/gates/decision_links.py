"""Signed one-time links to a gate's decision page, for right holders who get e-mail.

A link names one gate, one person and an expiry, signed with HMAC-SHA256 under
``web_link_secret`` (environment only). It proves who clicked because only that person's
mailbox received it. It is one-time by the rules it feeds: a person decides a gate once (the
store's unique key), so after its holder has decided, or the gate has closed, or the link has
expired, it opens nothing. Changing the person or the gate in a link breaks its signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

PATH = "/decide/"
DEFAULT_VALIDITY = timedelta(days=7)


@dataclass(frozen=True)
class DecisionLink:
    gate_id: str
    person: str
    expires_at: datetime

    @property
    def credential(self) -> str:
        """What proved the person, as logged with the decision (one link, one vote)."""
        return f"email-link:{self.person}:{self.gate_id[:8]}"


class LinkRefused(Exception):
    """A link that is forged, altered, expired or malformed; the message says which."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def sign(secret: str, link: DecisionLink) -> str:
    """The token to put after ``/decide/`` in the link."""
    body = _b64(
        json.dumps(
            {"g": link.gate_id, "p": link.person, "e": int(link.expires_at.timestamp())},
            separators=(",", ":"),
        ).encode()
    )
    return f"{body}.{_mac(secret, body)}"


def verify(secret: str, token: str, now: datetime) -> DecisionLink:
    """The link ``token`` stands for; LinkRefused when forged, altered or expired."""
    body, _, mac = token.partition(".")
    if not body or not mac or not hmac.compare_digest(_mac(secret, body), mac):
        raise LinkRefused("this decision link is not valid (altered or not ours)")
    try:
        data = json.loads(_unb64(body))
        link = DecisionLink(
            gate_id=str(data["g"]),
            person=str(data["p"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError):
        raise LinkRefused("this decision link is malformed") from None
    if now >= link.expires_at:
        raise LinkRefused(
            f"this decision link expired at {link.expires_at:%Y-%m-%d %H:%M} UTC; decide "
            "from Slack, the CLI or the web page instead"
        )
    return link


def url(base_url: str, secret: str, link: DecisionLink) -> str:
    return f"{base_url.rstrip('/')}{PATH}{sign(secret, link)}"
