"""The web application: the evidence browser, the Slack endpoint, and a health check.

Usage::

    from prodcontrol.web.app import create_app
    app = create_app()          # settings from prodcontrol.toml / PRODCONTROL_* variables
    # uvicorn.run(app, host="127.0.0.1", port=8000)  -- or `prodcontrol serve`

Every route but ``/healthz`` (and ``/slack/``, which checks Slack's own signature) needs a
person through the trusted proxy header or the static token: see :mod:`prodcontrol.web.auth`.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from prodcontrol import __version__
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings
from prodcontrol.web import (
    auth,
    decision_link,
    evidence,
    headers,
    login,
    metrics,
    mlflow_webhook,
    slack,
)
from prodcontrol.web import review as review_page
from prodcontrol.web.session import Signer

log = logging.getLogger(__name__)


def create_app(rt: Runtime | None = None) -> FastAPI:
    """A FastAPI app over ``rt`` (default: a Runtime from the settings)."""
    runtime = rt or Runtime(load_settings())
    app = FastAPI(
        title="prodcontrol",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.runtime = runtime
    app.state.signer = Signer()
    settings = runtime.settings
    if settings.web_auth_header and not settings.web_trusted_proxies:
        log.warning(
            "web_auth_header %s is set but web_trusted_proxies is empty: the header is ignored "
            "on every request; set PRODCONTROL_WEB_TRUSTED_PROXIES to your proxy's address",
            settings.web_auth_header,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.exposition())

    app.middleware("http")(auth.middleware(runtime, app.state.signer))
    # added last, so it runs first and also marks the 401s of the auth middleware
    app.middleware("http")(headers.add_security_headers)
    app.include_router(login.router)
    app.include_router(slack.router)
    app.include_router(evidence.router)
    app.include_router(review_page.router)
    app.include_router(decision_link.router)
    app.include_router(mlflow_webhook.router)
    return app
