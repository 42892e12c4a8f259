"""``prodcontrol serve``: the evidence browser and the Slack interactivity endpoint (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, runtime
from prodcontrol.cli.output import console


def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
) -> None:
    """Serve the web evidence browser and /slack/interactions until stopped (Ctrl-C)."""
    import uvicorn

    from prodcontrol.web.app import create_app

    rt = runtime(catalog, inventory)
    rt.config  # noqa: B018 - fail now, with the problems listed, rather than on the first request
    app = create_app(rt)
    ways = ["token"] if rt.settings.web_token else []
    if rt.settings.web_auth_header:
        ways.append(f"header {rt.settings.web_auth_header}")
    auth = " or ".join(ways) or "none configured: every page but /healthz is refused"
    console.print(f"prodcontrol serving on http://{host}:{port}/ (auth: {auth})")
    uvicorn.run(app, host=host, port=port, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
