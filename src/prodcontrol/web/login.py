"""``GET/POST /login``: exchange a token typed into a form for a signed session cookie.

The token travels in the POST body, so it never appears in a URL, an access log or the
browser's history. The answer always redirects to ``/``: there is no ``next=`` to abuse.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from prodcontrol.runtime import Runtime
from prodcontrol.web import metrics
from prodcontrol.web.auth import Unauthorized, credential_viewer
from prodcontrol.web.deps import get_runtime
from prodcontrol.web.render import render
from prodcontrol.web.session import SESSION_COOKIE, SESSION_TTL, Signer

router = APIRouter()
MAX_FORM_BYTES = 4096


@router.get("/login", response_class=HTMLResponse)
def login_form() -> HTMLResponse:
    return HTMLResponse(render("login.html", message=""))


@router.post("/login")
async def login(request: Request, rt: Runtime = Depends(get_runtime)) -> Response:  # noqa: B008 - FastAPI's dependency idiom
    body = await request.body()
    try:
        if len(body) > MAX_FORM_BYTES:
            raise Unauthorized("the form is too large")
        form = parse_qs(body.decode("ascii"))
        offered = form.get("token", [""])[-1]
        viewer = await run_in_threadpool(credential_viewer, rt, offered)
    except (Unauthorized, UnicodeDecodeError, ValueError) as exc:
        metrics.count("web_requests_refused", "bad_login")
        why = str(exc) if isinstance(exc, Unauthorized) else "the form is not plain ASCII"
        return HTMLResponse(render("login.html", message=f"not signed in: {why}"), 401)
    signer: Signer = request.app.state.signer
    cookie, _ = signer.session_cookie(viewer.person, viewer.credential, rt.clock.now())
    answer = RedirectResponse("/", status_code=303)
    answer.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        secure=True,
        samesite="strict",
        path="/",
    )
    return answer


@router.post("/logout")
def logout() -> Response:
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return answer
