"""Security headers on every answer: no framing by other sites, no sniffing, no referrer.

Pages are never framed (``frame-ancestors 'none'``, ``X-Frame-Options: DENY``); the one thing
our own run page frames, an Evidently report under ``/runs/<id>/artifacts/``, may be framed by
this site only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request, Response


def _framed_by_us(path: str) -> bool:
    return path.startswith("/runs/") and "/artifacts/" in path


async def add_security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    own = _framed_by_us(request.url.path)
    response.headers.setdefault(
        "Content-Security-Policy", "frame-ancestors 'self'" if own else "frame-ancestors 'none'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if own else "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers.setdefault("Cache-Control", "no-store")
    return response
