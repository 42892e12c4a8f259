"""Who is asking: a trusted reverse-proxy header, or a static token; nobody else gets in.

* ``web_auth_header`` (settings): the company proxy authenticates people and passes their id in
  this header (``X-Forwarded-User``, say). The value is matched against people.yaml by id,
  e-mail or Slack id; that person may then decide gates they hold the right for. Only use it
  behind a proxy that strips the header from incoming requests.
* ``web_token`` (settings, environment only): ``Authorization: Bearer <token>``, or once
  ``?token=<token>`` which sets a cookie for a browser. A shared token says nothing about who
  is there, so it grants read-only access.

``/healthz`` is open; ``/slack/`` is left to the Slack router, which checks Slack's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse

from prodcontrol.catalog.config import Config
from prodcontrol.settings import Settings

OPEN_PATHS = ("/healthz",)
OPEN_PREFIXES = ("/slack/", "/decide/")  # Slack's signature; the signed decision link
TOKEN_COOKIE = "prodcontrol_token"


@dataclass(frozen=True)
class Viewer:
    """An authenticated visitor; ``person`` is set only when we know who they are."""

    label: str
    person: str | None
    via: str


def _person_for(config: Config, value: str) -> str | None:
    wanted = value.strip().lower()
    for person in config.inventory.people.values():
        ids = {person.id, (person.email or "").lower(), (person.slack_id or "").lower()}
        if wanted in ids:
            return person.id
    return None


def identify(request: Request, settings: Settings, config: Config) -> Viewer | None:
    """The viewer of ``request``, or None when it carries no accepted credential."""
    if settings.web_auth_header:
        value = request.headers.get(settings.web_auth_header)
        if value:
            return Viewer(label=value, person=_person_for(config, value), via="proxy header")
    if settings.web_token is not None:
        expected = settings.web_token.get_secret_value()
        bearer = request.headers.get("authorization", "")
        offered = [
            bearer.removeprefix("Bearer ").strip() if bearer.startswith("Bearer ") else "",
            request.cookies.get(TOKEN_COOKIE, ""),
            request.query_params.get("token", ""),
        ]
        if any(o and hmac.compare_digest(o, expected) for o in offered):
            return Viewer(label="token holder (read-only)", person=None, via="token")
    return None


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def middleware(
    settings: Settings, config: Callable[[], Config]
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """Refuse every request but the open ones unless :func:`identify` accepts it."""

    async def check(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if is_open(request.url.path):
            return await call_next(request)
        viewer = identify(request, settings, config())
        if viewer is None:
            return PlainTextResponse(
                "authentication required: come through the company proxy or send "
                "'Authorization: Bearer <PRODCONTROL_WEB_TOKEN>'",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        request.state.viewer = viewer
        token = request.query_params.get("token")
        if token and viewer.via == "token" and request.method == "GET":
            # a browser that came with ?token= gets a cookie and a URL without the secret
            target = request.url.remove_query_params("token")
            redirect = RedirectResponse(
                str(target.path) + (f"?{target.query}" if target.query else ""), 303
            )
            redirect.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return redirect
        return await call_next(request)

    return check


class Csrf:
    """Form tokens bound to the person, so another site cannot post a decision as them."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def token(self, person: str) -> str:
        return hmac.new(self._key, person.encode(), hashlib.sha256).hexdigest()

    def valid(self, person: str, token: str) -> bool:
        return hmac.compare_digest(self.token(person), token)
