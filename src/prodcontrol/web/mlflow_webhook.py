"""``POST /mlflow/webhook``: MLflow registry webhooks, verified, then acted on.

MLflow 3 signs each delivery (``mlflow/webhooks/delivery.py``): ``X-MLflow-Signature`` is
``v1,`` + base64 of HMAC-SHA256 over ``<delivery id>.<timestamp>.<body>`` with the webhook's
secret, here ``PRODCONTROL_MLFLOW_WEBHOOK_SECRET`` (environment only). A request without the
headers, with a timestamp more than five minutes off, or with a signature that does not match
is refused (401) and counted in ``/metrics``; it never reaches the evidence chain. A delivery
id seen before (MLflow's own retry, or a replay) is answered 200 and not acted on twice.

The answer goes back at once (MLflow waits for it); the re-evaluation runs after it
(:mod:`prodcontrol.control.lifecycle.registry_events`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import JSONResponse

from prodcontrol.runtime import Runtime
from prodcontrol.web import metrics
from prodcontrol.web.deps import get_runtime

log = logging.getLogger(__name__)
router = APIRouter()
Rt = Annotated[Runtime, Depends(get_runtime)]

PATH = "/mlflow/webhook"
SIGNATURE, TIMESTAMP, DELIVERY = "X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id"
MAX_AGE_SECONDS = 300
MAX_BODY = 256 * 1024


class Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def expected_signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    digest = hmac.new(
        secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(), hashlib.sha256
    ).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(rt: Runtime, headers: Any, body: bytes) -> str:
    """The delivery id of a genuine, fresh delivery; Refused otherwise."""
    secret = rt.settings.mlflow_webhook_secret
    if secret is None:
        raise Refused(
            "no_secret", "set PRODCONTROL_MLFLOW_WEBHOOK_SECRET to accept MLflow webhooks"
        )
    signature, timestamp = headers.get(SIGNATURE, ""), headers.get(TIMESTAMP, "")
    delivery_id = headers.get(DELIVERY, "")
    if not (signature and timestamp and delivery_id):
        raise Refused("unsigned", f"missing {SIGNATURE}, {TIMESTAMP} or {DELIVERY}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Refused("bad_timestamp", f"malformed {TIMESTAMP}") from None
    age = rt.clock.now().timestamp() - sent_at
    if abs(age) > MAX_AGE_SECONDS:
        raise Refused("stale", f"delivery is {int(age)} s old (limit {MAX_AGE_SECONDS} s)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("bad_body", "the body is not UTF-8") from None
    wanted = expected_signature(secret.get_secret_value(), delivery_id, timestamp, text)
    if not hmac.compare_digest(wanted.encode(), signature.encode()):
        raise Refused("bad_signature", f"{SIGNATURE} does not match the body")
    return str(delivery_id)


def _refuse(refused: Refused) -> JSONResponse:
    metrics.count("mlflow_webhooks_refused", refused.reason)
    return JSONResponse({"refused": refused.reason, "why": str(refused)}, status_code=401)


@router.post(PATH)
async def mlflow_webhook(request: Request, rt: Rt, background: BackgroundTasks) -> JSONResponse:
    body = await request.body()
    if len(body) > MAX_BODY:
        return _refuse(Refused("too_large", f"body over {MAX_BODY} bytes"))
    try:
        delivery_id = verify(rt, request.headers, body)
        payload = json.loads(body)
        event = f"{payload['entity']}.{payload['action']}"
        data = dict(payload.get("data") or {})
    except Refused as refused:
        return _refuse(refused)
    except (ValueError, KeyError, TypeError):
        metrics.count("mlflow_webhooks_refused", "malformed")
        return JSONResponse({"refused": "malformed", "why": "not an MLflow payload"}, 400)
    if not rt.identity.first_time(f"mlflow:{delivery_id}", rt.clock.now(), 2 * MAX_AGE_SECONDS):
        metrics.count("mlflow_webhooks_duplicate", event)
        return JSONResponse({"accepted": False, "duplicate": delivery_id})
    metrics.count("mlflow_webhooks_accepted", event)
    background.add_task(_process, rt, event, data, delivery_id)
    return JSONResponse({"accepted": True, "event": event, "delivery": delivery_id})


def _process(rt: Runtime, event: str, data: dict[str, Any], delivery_id: str) -> None:
    from prodcontrol.control.lifecycle.registry_events import handle

    try:
        outcome = handle(rt, event, data, delivery_id)
    except Exception:  # the answer is gone already; the next scheduled run is the backstop
        log.exception("MLflow webhook %s (%s) could not be acted on", delivery_id, event)
        return
    log.info("MLflow webhook %s: %s %s: %s", delivery_id, event, outcome.model, outcome.note)
