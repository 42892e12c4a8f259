"""Registers prodcontrol's endpoint as an MLflow registry webhook (``MlflowClient.create_webhook``).

Registering again updates the webhook of the same name (URL, events, secret) instead of adding
a second one, so ``prodcontrol webhooks register`` can run on every deploy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prodcontrol.adapters.mlflow import MlflowAdapter

EVENTS = ["model_version.created", "model_version_alias.created", "model_version_alias.deleted"]
DEFAULT_NAME = "prodcontrol"


@dataclass(frozen=True)
class Registered:
    webhook_id: str
    name: str
    url: str
    events: list[str]
    created: bool


def register_webhook(
    tracking_uri: str, url: str, secret: str, name: str = DEFAULT_NAME
) -> Registered:
    adapter = MlflowAdapter(tracking_uri)
    client = adapter.client
    what = f"MLflow webhooks at {tracking_uri}"

    def existing() -> list[Any]:
        found = client.list_webhooks()
        return [w for w in found if getattr(w, "name", None) == name]

    same = adapter._call(what, existing)
    if same:
        hook = same[0]
        updated = adapter._call(
            what,
            lambda: client.update_webhook(
                hook.webhook_id,
                url=url,
                events=EVENTS,
                secret=secret,
                status="ACTIVE",
            ),
        )
        return Registered(str(updated.webhook_id), name, url, EVENTS, created=False)
    made = adapter._call(
        what,
        lambda: client.create_webhook(
            name=name,
            url=url,
            events=EVENTS,
            description="prodcontrol: re-evaluate controls when the registry changes",
            secret=secret,
        ),
    )
    return Registered(str(made.webhook_id), name, url, EVENTS, created=True)


def delete_webhook(tracking_uri: str, webhook_id: str) -> None:
    adapter = MlflowAdapter(tracking_uri)
    adapter._call("MLflow webhooks", lambda: adapter.client.delete_webhook(webhook_id))
