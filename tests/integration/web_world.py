"""A real uvicorn serving ``create_app`` on a free loopback port, and clients that connect from
chosen loopback source addresses (the server trusts only 127.0.0.7 as the company proxy)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from prodcontrol.runtime import Runtime
from prodcontrol.web.app import create_app
from prodcontrol.web.server import server_config

PROXY, OUTSIDER = "127.0.0.7", "127.0.0.1"
HEADER = "X-Forwarded-User"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(rt: Runtime) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(server_config(create_app(rt), "127.0.0.1", port, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def client(url: str, source: str) -> httpx.Client:
    """An HTTP client whose connections come from the loopback address ``source``."""
    return httpx.Client(
        base_url=url,
        transport=httpx.HTTPTransport(local_address=source),
        follow_redirects=False,
        timeout=30,
    )
