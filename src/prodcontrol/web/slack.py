"""``POST /slack/interactions``: verified Slack button clicks and modal submissions.

Every request is checked in this order, and every refusal is recorded as a
``slack.request_refused`` event before it is answered:

1. a signing secret is configured (else 401);
2. ``X-Slack-Request-Timestamp`` is within 5 minutes of now (else 401);
3. ``X-Slack-Signature`` matches the raw body (slack-sdk ``SignatureVerifier``; else 401);
4. the same signature was not seen before (a replay; else 401);
5. the Slack user is a person in people.yaml (else 403);
6. that person holds the right for what they clicked (else 403); the decision itself then goes
   through :func:`prodcontrol.decisions.decide`, the same function the CLI uses, whose refusals
   (separation of duties, closed gate, ...) are 403 too.

The work done inside the request is a few database writes; messages to update are queued in the
outbox and sent by the sender, so the answer is well inside Slack's 3-second limit.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from prodcontrol import escalation
from prodcontrol.clock import Clock
from prodcontrol.errors import DecisionRefused, ProdControlError, UnreachableError
from prodcontrol.evidence.records import DecisionValue
from prodcontrol.messages import ACTION_PREFIX, WAIVER_CALLBACK, waiver_modal
from prodcontrol.runtime import Runtime
from prodcontrol.web.deps import get_runtime

router = APIRouter()

MAX_AGE_SECONDS = 300


class _SlackClock:
    """Our (injectable) clock in the shape slack-sdk's SignatureVerifier asks for."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


class SeenSignatures:
    """Signatures accepted in the last 5 minutes: a second request with one is a replay.

    A request older than 5 minutes is refused anyway, so remembering 5 minutes is enough. This
    is per process: run one ``prodcontrol serve`` behind the Slack request URL.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, signature: str, now: float) -> bool:
        with self._lock:
            for old in [s for s, at in self._seen.items() if now - at > 2 * MAX_AGE_SECONDS]:
                del self._seen[old]
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True


seen_signatures = SeenSignatures()


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **context: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.context = status, code, message, context


@router.post("/slack/interactions")
async def interactions(request: Request, rt: Runtime = Depends(get_runtime)) -> JSONResponse:  # noqa: B008 - FastAPI's dependency idiom
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    status, content = await run_in_threadpool(handle, rt, body, headers)
    return JSONResponse(content, status_code=status)


def handle(rt: Runtime, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Verify, map, authorise and apply one interaction; ``(status, JSON answer)``."""
    signature = headers.get("x-slack-signature", "")
    try:
        _verify(rt, body, headers.get("x-slack-request-timestamp", ""), signature)
        payload = _payload(body)
        return 200, _apply(rt, payload)
    except Refused as refused:
        _record_refusal(rt, refused, signature or hashlib.sha256(body).hexdigest())
        return refused.status, {"ok": False, "error": refused.code, "message": refused.message}


# --------------------------------------------------------------------------- verification


def _verify(rt: Runtime, body: bytes, timestamp: str, signature: str) -> None:
    secret = rt.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        raise Refused(
            401,
            "no_signing_secret",
            "set PRODCONTROL_SLACK_SIGNING_SECRET to accept Slack requests",
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Refused(
            401, "bad_timestamp", "missing or malformed X-Slack-Request-Timestamp"
        ) from None
    now = rt.clock.now().timestamp()
    if abs(now - sent_at) > MAX_AGE_SECONDS:
        raise Refused(
            401,
            "stale_request",
            f"request is {int(now - sent_at)} s old (limit {MAX_AGE_SECONDS} s)",
            request_timestamp=sent_at,
        )
    verifier = SignatureVerifier(secret.get_secret_value(), clock=_SlackClock(rt.clock))  # type: ignore[arg-type]
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Refused(401, "bad_signature", "X-Slack-Signature does not match the body")
    if not seen_signatures.first_time(signature, now):
        raise Refused(401, "replayed", "this signed request was already received once")


def _payload(body: bytes) -> dict[str, Any]:
    try:
        raw = parse_qs(body.decode("utf-8"))["payload"][-1]
        payload = json.loads(raw)
    except (KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, "bad_payload", f"no JSON 'payload' form field: {exc}") from None
    if not isinstance(payload, dict):
        raise Refused(400, "bad_payload", "'payload' is not a JSON object")
    return payload


# --------------------------------------------------------------------------- applying


def _apply(rt: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    slack_user = str((payload.get("user") or {}).get("id") or "")
    person = _person_for(rt, slack_user)
    context: dict[str, Any] = {"slack_user": slack_user, "person": person}
    if person is None:
        raise Refused(
            403, "unknown_slack_user", f"Slack user {slack_user!r} is not in people.yaml", **context
        )
    kind = payload.get("type")
    if kind == "block_actions":
        actions = payload.get("actions") or []
        if not actions:
            raise Refused(400, "bad_payload", "block_actions without an action", **context)
        action = actions[0]
        name = str(action.get("action_id", "")).removeprefix(ACTION_PREFIX)
        try:
            value = json.loads(action.get("value") or "{}")
        except json.JSONDecodeError:
            raise Refused(400, "bad_payload", "button value is not JSON", **context) from None
        context |= {
            "action": name,
            "gate_id": value.get("gate_id"),
            "finding_id": value.get("finding_id"),
        }
        return _button(
            rt,
            person,
            name,
            value,
            trigger_id=str(payload.get("trigger_id") or ""),
            context=context,
        )
    if kind == "view_submission":
        view = payload.get("view") or {}
        if view.get("callback_id") == WAIVER_CALLBACK:
            return _waiver_submitted(rt, person, view, context)
    raise Refused(400, "unsupported", f"interaction type {kind!r} is not handled", **context)


def _button(
    rt: Runtime,
    person: str,
    name: str,
    value: dict[str, Any],
    *,
    trigger_id: str,
    context: dict[str, Any],
) -> dict[str, Any]:
    if name in ("approve", "reject"):
        return _decide(rt, person, name, value.get("gate_id"), context)
    finding_id = value.get("finding_id")
    if not finding_id:
        raise Refused(400, "bad_payload", "button carries no finding id", **context)
    finding = rt.store.get_finding(finding_id)
    context["model"] = finding.model
    if name == "acknowledge":
        found = escalation.escalation_for_finding(rt, finding_id)
        if found is None:
            raise Refused(
                404, "no_escalation", f"finding {finding_id} has no escalation", **context
            )
        try:
            acked = escalation.acknowledge(rt, found.id, person, "slack")
        except DecisionRefused as exc:
            raise Refused(403, "no_right", str(exc), **context) from None
        return {"ok": True, "escalation": acked.id, "status": acked.status}
    if name == "request_waiver":
        entry = rt.config.model(finding.model)
        if person not in rt.config.holders_of(entry, "exception"):
            raise Refused(
                403,
                "no_right",
                f"{person} does not hold the exception right on {finding.model}",
                **context,
            )
        days = max(1, rt.config.tier(entry).waiver_max // timedelta(days=1))
        opener = getattr(rt.notifier, "open_view", None)
        if opener is None or not trigger_id:
            return {"ok": True, "modal": "not opened (no Slack client)", "max_days": days}
        delivery = opener(trigger_id, waiver_modal(finding_id, value.get("gate_id"), days))
        return {"ok": bool(delivery.ok), "modal": "opened" if delivery.ok else delivery.error}
    raise Refused(400, "unsupported", f"unknown action {name!r}", **context)


def _decide(
    rt: Runtime, person: str, name: str, gate_id: Any, context: dict[str, Any]
) -> dict[str, Any]:
    from prodcontrol import decisions

    if not gate_id:
        raise Refused(400, "bad_payload", "button carries no gate id", **context)
    gate = rt.store.get_gate(str(gate_id))
    context["model"] = gate.model
    entry = rt.config.model(gate.model)
    if person not in rt.config.holders_of(entry, gate.right):  # type: ignore[arg-type]
        raise Refused(
            403,
            "no_right",
            f"{person} does not hold the {gate.right} right on {gate.model}",
            **context,
        )
    decision: DecisionValue = "approve" if name == "approve" else "reject"
    try:
        decided = decisions.decide(
            rt,
            gate.id,
            person=person,
            decision=decision,
            channel="slack",
            reason="via Slack button",
        )
    except DecisionRefused as exc:
        raise Refused(403, "decision_refused", str(exc), **context) from None
    except UnreachableError as exc:
        # the decision is recorded; only its registry action failed (`reconcile` retries it)
        decided = rt.store.get_gate(gate.id)
        escalation.gate_decided(rt, decided.id)
        return {"ok": True, "gate": decided.id, "status": decided.status, "action_error": str(exc)}
    updates = escalation.gate_decided(rt, decided.id) if decided.status != "pending" else 0
    return {"ok": True, "gate": decided.id, "status": decided.status, "messages_to_update": updates}


def _waiver_submitted(
    rt: Runtime, person: str, view: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    from prodcontrol import waivers

    meta = json.loads(view.get("private_metadata") or "{}")
    values = (view.get("state") or {}).get("values") or {}
    reason = str(((values.get("reason") or {}).get("value") or {}).get("value") or "").strip()
    days_text = ((values.get("days") or {}).get("value") or {}).get("value") or "0"
    context |= {"action": "waiver", "finding_id": meta.get("finding_id")}
    finding = rt.store.get_finding(str(meta.get("finding_id")))
    context["model"] = finding.model
    entry = rt.config.model(finding.model)
    if person not in rt.config.holders_of(entry, "exception"):
        raise Refused(
            403,
            "no_right",
            f"{person} does not hold the exception right on {finding.model}",
            **context,
        )
    if not reason:
        return {
            "response_action": "errors",
            "errors": {"reason": "Give the reason for the waiver."},
        }
    try:
        days = int(float(days_text))
    except ValueError:
        days = 0
    if days < 1:
        return {"response_action": "errors", "errors": {"days": "Give a whole number of days."}}
    try:
        waivers.grant(
            rt,
            finding.id,
            approver=person,
            reason=reason,
            expires_at=rt.clock.now() + timedelta(days=days),
            channel="slack",
        )
    except ProdControlError as exc:
        return {"response_action": "errors", "errors": {"days": str(exc)[:150]}}
    return {"response_action": "clear"}


# --------------------------------------------------------------------------- helpers


def _person_for(rt: Runtime, slack_user: str) -> str | None:
    if not slack_user:
        return None
    for person in rt.config.inventory.people.values():
        if person.slack_id == slack_user:
            return person.id
    lookup = getattr(rt.notifier, "person_for", None)
    found = lookup(slack_user) if lookup is not None else None
    return str(found) if found else None


def _record_refusal(rt: Runtime, refused: Refused, request_id: str) -> None:
    context = {k: v for k, v in refused.context.items() if k != "model"}
    rt.store.record_event(
        "slack.request_refused",
        "slack_request",
        hashlib.sha256(request_id.encode()).hexdigest()[:32],
        refused.context.get("model"),
        {"status": refused.status, "refused": refused.code, "why": refused.message, **context},
    )
