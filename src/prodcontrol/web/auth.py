"""Who is asking: a personal token, the trusted proxy's header, a session, or the read-only token.

* ``Authorization: Bearer <personal token>`` (``prodcontrol tokens issue``): acts as that
  person, who may decide what they hold the right for; revocation and expiry are checked on
  every request.
* ``web_auth_header`` (``X-Forwarded-User``, say) is believed **only** on connections from
  ``web_trusted_proxies`` (CIDRs); from anywhere else it is ignored and counted. Its value must
  be a person's exact id or exact e-mail in people.yaml; anything else is refused.
* ``POST /login`` with a personal token or the read-only token in the form body (never in a
  URL) opens a signed session cookie (``HttpOnly``, ``Secure``, ``SameSite=Strict``).
* ``PRODCONTROL_WEB_TOKEN`` as ``Authorization: Bearer``: read-only (a shared secret says
  nothing about who is there).

A credential that is present but malformed, unknown, expired or revoked is a 401, never a 500
and never a fallback to another way in. ``/healthz`` is open; ``/slack/`` checks Slack's
signature instead.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from prodcontrol.identity import service as identity
from prodcontrol.runtime import Runtime
from prodcontrol.web import metrics
from prodcontrol.web.session import SESSION_COOKIE, Signer

log = logging.getLogger(__name__)

OPEN_PATHS = ("/healthz", "/login")
# each checks its own signature: Slack's, the e-mailed decision link's, MLflow's webhook HMAC
OPEN_PREFIXES = ("/slack/", "/decide/", "/mlflow/webhook")
READ_ONLY = "web-token"


@dataclass(frozen=True)
class Viewer:
    """An authenticated visitor; ``person`` is set only when we know who they are."""

    label: str
    person: str | None
    via: str
    credential: str
    session_id: str | None = None

    @property
    def csrf_binding(self) -> str:
        """What a form token is bound to: the session, else the credential itself."""
        return f"session:{self.session_id}" if self.session_id else self.credential


class Unauthorized(Exception):
    """A credential was offered and is no good: 401 with this message."""


def person_by_exact_id_or_email(rt: Runtime, value: str) -> str | None:
    """The person whose id or e-mail is exactly ``value`` (no case folding, no Slack ids)."""
    people = rt.config.inventory.people
    if value in people:
        return value
    matches = [p.id for p in people.values() if p.email is not None and p.email == value]
    return matches[0] if len(matches) == 1 else None


def from_trusted_proxy(rt: Runtime, request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in rt.settings.web_trusted_proxies)


def _ascii(value: str, what: str) -> str:
    if not value.isascii() or not value.isprintable():
        raise Unauthorized(f"{what} must be printable ASCII")
    return value.strip()


def credential_viewer(rt: Runtime, offered: str) -> Viewer:
    """The viewer a token (personal or the read-only web token) stands for, or Unauthorized."""
    offered = _ascii(offered, "the token")
    if offered.startswith("pct_"):
        try:
            actor = identity.authenticate(rt, offered)
        except identity.NotAuthenticated as exc:
            raise Unauthorized(str(exc).split(";")[0]) from None
        return Viewer(actor.person, actor.person, "personal token", actor.credential)
    expected = rt.settings.web_token
    if (
        expected is not None
        and offered
        and hmac.compare_digest(offered.encode(), expected.get_secret_value().encode())
    ):
        return Viewer("token holder (read-only)", None, "token", READ_ONLY)
    raise Unauthorized("the token is not valid")


def identify(rt: Runtime, signer: Signer, request: Request) -> Viewer | None:
    """The viewer of ``request``; None without any credential; Unauthorized for a bad one."""
    if "token" in request.query_params:
        raise Unauthorized(
            "tokens are never accepted in a URL (they end up in logs and history); send "
            "'Authorization: Bearer <token>' or sign in with POST /login"
        )
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, offered = _ascii(authorization, "the Authorization header").partition(" ")
        if scheme.lower() != "bearer" or not offered.strip():
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        return credential_viewer(rt, offered.strip())
    header = rt.settings.web_auth_header
    value = request.headers.get(header) if header else None
    if value is not None:
        if from_trusted_proxy(rt, request):
            value = _ascii(value, f"the {header} header")
            person = person_by_exact_id_or_email(rt, value)
            if person is None:
                raise Unauthorized(
                    f"{header} {value!r} is not the exact id or e-mail of a person in people.yaml"
                )
            return Viewer(person, person, "proxy header", f"proxy:{person}")
        metrics.count("web_untrusted_proxy_header", "ignored")
        log.warning(
            "ignored %s from %s: not in web_trusted_proxies",
            header,
            request.client.host if request.client else "?",
        )
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return _session_viewer(rt, signer, cookie)
    return None


def _session_viewer(rt: Runtime, signer: Signer, cookie: str) -> Viewer:
    session = signer.read_session(_ascii(cookie, "the session cookie"), rt.clock.now())
    if session is None:
        raise Unauthorized("the session is not valid or has expired; sign in again at /login")
    if session.credential.startswith("token:"):
        token = rt.identity.get_token(session.credential.removeprefix("token:"))
        if token is None or token.state(rt.clock.now()) != "active":
            raise Unauthorized("the token this session was opened with is no longer valid")
    label = session.person or "token holder (read-only)"
    via = "session" if session.person else "token"
    return Viewer(label, session.person, via, session.credential, session.sid)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def refusal(message: str) -> Response:
    return PlainTextResponse(
        f"authentication required: {message}",
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


HOW = (
    "send 'Authorization: Bearer <your personal token>', sign in at /login, or come through "
    "the company proxy"
)


def middleware(
    rt: Runtime, signer: Signer
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Refuse every request but the open ones unless :func:`identify` accepts it."""

    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if is_open(request.url.path):
            return await call_next(request)
        try:
            viewer = await run_in_threadpool(identify, rt, signer, request)
        except Unauthorized as exc:
            metrics.count("web_requests_refused", "bad_credential")
            return refusal(str(exc))
        if viewer is None:
            metrics.count("web_requests_refused", "no_credential")
            return refusal(HOW)
        request.state.viewer = viewer
        return await call_next(request)

    return check
