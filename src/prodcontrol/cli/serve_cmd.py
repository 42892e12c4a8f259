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
    from prodcontrol.web.server import server_config

    rt = runtime(catalog, inventory)
    rt.config  # noqa: B018 - fail now, with the problems listed, rather than on the first request
    app = create_app(rt)
    settings = rt.settings
    ways = ["personal tokens"] + (["the read-only web token"] if settings.web_token else [])
    if settings.web_auth_header and settings.web_trusted_proxies:
        proxies = ", ".join(str(n) for n in settings.web_trusted_proxies)
        ways.append(f"header {settings.web_auth_header} from {proxies}")
    elif settings.web_auth_header:
        console.print(
            f"[yellow]warning[/yellow]: {settings.web_auth_header} is ignored: set "
            "web_trusted_proxies (PRODCONTROL_WEB_TRUSTED_PROXIES) to your proxy's CIDR"
        )
    console.print(f"prodcontrol serving on http://{host}:{port}/ (auth: {', '.join(ways)})")
    uvicorn.Server(server_config(app, host, port)).run()


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
