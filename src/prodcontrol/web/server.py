"""The uvicorn configuration ``prodcontrol serve`` and the tests run the web app with."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI


def server_config(app: FastAPI, host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    """uvicorn never rewrites the client address from X-Forwarded-For here.

    The trusted-proxy check needs the real peer address; uvicorn's default (``proxy_headers``
    on, trusting 127.0.0.1) would let any local client claim to be the proxy.
    """
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False)
