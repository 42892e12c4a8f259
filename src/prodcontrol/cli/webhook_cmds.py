"""``prodcontrol webhooks register``: MLflow tells ``prodcontrol serve`` of registry changes."""

from __future__ import annotations

from typing import Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.output import console, emit_object
from prodcontrol.errors import UsageError

webhooks_app = typer.Typer(
    help="MLflow registry webhooks to prodcontrol serve.", no_args_is_help=True
)


@webhooks_app.command("register")
def register_cmd(
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="Where MLflow delivers; default: web_base_url + /mlflow/webhook."
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="The webhook's name in MLflow.")
    ] = "prodcontrol",
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create (or update) the MLflow webhook for model versions and alias changes.

    Needs a tracking server with a SQL backend (OSS webhooks) and
    PRODCONTROL_MLFLOW_WEBHOOK_SECRET, the secret MLflow signs each delivery with.
    """
    from prodcontrol.adapters.mlflow_webhooks import register_webhook
    from prodcontrol.web.mlflow_webhook import PATH

    rt = runtime(catalog, inventory)
    secret = rt.settings.mlflow_webhook_secret
    if secret is None:
        raise UsageError(
            "PRODCONTROL_MLFLOW_WEBHOOK_SECRET is not set; set it (the same value where "
            "`prodcontrol serve` runs) so MLflow signs its deliveries and serve can check them"
        )
    target = url or rt.settings.web_base_url.rstrip("/") + PATH
    done = register_webhook(
        rt.settings.resolved_tracking_uri, target, secret.get_secret_value(), name
    )
    result = {
        "webhook": done.webhook_id,
        "name": done.name,
        "url": done.url,
        "events": ", ".join(done.events),
        "status": "created" if done.created else "updated",
    }
    if as_json:
        emit_object(result, as_json=True)
        return
    console.print(
        f"MLflow webhook '{done.name}' {result['status']}: {', '.join(done.events)} -> {done.url}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")
