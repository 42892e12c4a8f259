"""``POST /slack/interactions``: verified Slack button clicks and modal submissions.

Every request is checked in this order:

1. the body is at most 64 KiB (else 413);
2. a signing secret is configured (else 401);
3. ``X-Slack-Request-Timestamp`` is within 5 minutes of now (else 401);
4. ``X-Slack-Signature`` matches the raw body (slack-sdk ``SignatureVerifier``; else 401);
5. the same signature was not seen before, by this process or any other replica: the replay
   cache is a table in the evidence database (else 401).

Those refusals are unauthenticated noise: they are logged and counted
(:data:`prodcontrol.web.metrics.counters`, ``GET /metrics``) but never appended to the evidence
chain, so junk POSTs cannot grow it. From here on the request is Slack's, and every refusal is
recorded as a ``slack.request_refused`` event naming the problem:

6. the payload is well formed (a JSON object whose fields have the types Slack sends; else 400);
7. the Slack user is a person in people.yaml (else 403);
8. that person holds the right for what they clicked (else 403); the decision itself then goes
   through :func:`prodcontrol.control.gates.decisions.decide`, the same function the CLI uses, whose
   refusals (separation of duties, closed gate, one credential one vote, ...) are 403 too.

The work done inside the request is a few database writes; messages to update are queued in the
outbox and sent by the sender, so the answer is well inside Slack's 3-second limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from starlette.concurrency import run_in_threadpool

from prodcontrol.clock import Clock
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.messages import (
    ACTION_PREFIX,
    DECISION_CALLBACK,
    WAIVER_CALLBACK,
    decision_modal,
    waiver_modal,
)
from prodcontrol.errors import DecisionRefused, ProdControlError, UnreachableError
from prodcontrol.evidence.port import RecordNotFound
from prodcontrol.evidence.records import DecisionValue
from prodcontrol.runtime import Runtime
from prodcontrol.web import metrics
from prodcontrol.web.deps import get_runtime

router = APIRouter()
log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300
MAX_BODY_BYTES = 64 * 1024


class _SlackClock:
    """Our (injectable) clock in the shape slack-sdk's SignatureVerifier asks for."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock.now().timestamp()


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str, **context: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.context = status, code, message, context


class Unauthenticated(Refused):
    """Not (provably) from Slack: counted and logged, never recorded as evidence."""


@router.post("/slack/interactions")
async def interactions(request: Request, rt: Runtime = Depends(get_runtime)) -> JSONResponse:  # noqa: B008 - FastAPI's dependency idiom
    body = await _bounded_body(request)
    if body is None:
        metrics.count("slack_requests_refused", "too_large")
        log.warning("slack request refused: body over %d bytes", MAX_BODY_BYTES)
        return JSONResponse(
            {"ok": False, "error": "too_large", "message": f"body over {MAX_BODY_BYTES} bytes"},
            status_code=413,
        )
    headers = {k.lower(): v for k, v in request.headers.items()}
    status, content = await run_in_threadpool(handle, rt, body, headers)
    return JSONResponse(content, status_code=status)


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None as soon as it is longer than MAX_BODY_BYTES (never read it all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def handle(rt: Runtime, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Verify, map, authorise and apply one interaction; ``(status, JSON answer)``."""
    signature = headers.get("x-slack-signature", "")
    try:
        _verify(rt, body, headers.get("x-slack-request-timestamp", ""), signature)
        payload = _payload(body)
        return 200, _apply(rt, payload)
    except Unauthenticated as refused:
        metrics.count("slack_requests_refused", refused.code)
        log.warning("slack request refused (%s): %s", refused.code, refused.message)
        return refused.status, {"ok": False, "error": refused.code, "message": refused.message}
    except Refused as refused:
        metrics.count("slack_requests_refused", refused.code)
        _record_refusal(rt, refused, signature)
        return refused.status, {"ok": False, "error": refused.code, "message": refused.message}


# --------------------------------------------------------------------------- verification


def _verify(rt: Runtime, body: bytes, timestamp: str, signature: str) -> None:
    secret = rt.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value().strip():
        raise Unauthenticated(
            401,
            "no_signing_secret",
            "set PRODCONTROL_SLACK_SIGNING_SECRET to accept Slack requests",
        )
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthenticated(
            401, "bad_timestamp", "missing or malformed X-Slack-Request-Timestamp"
        ) from None
    now = rt.clock.now().timestamp()
    if abs(now - sent_at) > MAX_AGE_SECONDS:
        raise Unauthenticated(
            401,
            "stale_request",
            f"request is {int(now - sent_at)} s old (limit {MAX_AGE_SECONDS} s)",
            request_timestamp=sent_at,
        )
    verifier = SignatureVerifier(secret.get_secret_value(), clock=_SlackClock(rt.clock))  # type: ignore[arg-type]
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Unauthenticated(401, "bad_signature", "X-Slack-Signature does not match the body")
    key = hashlib.sha256(signature.encode()).hexdigest()
    if not rt.identity.first_time(key, rt.clock.now(), 2 * MAX_AGE_SECONDS):
        raise Unauthenticated(401, "replayed", "this signed request was already received once")


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


def _malformed(what: str, context: dict[str, Any]) -> Refused:
    return Refused(400, "bad_payload", what, **context)


def _obj(value: Any, where: str, context: dict[str, Any]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _malformed(f"{where} is a {type(value).__name__}, not a JSON object", context)
    return value


def _text(value: Any, where: str, context: dict[str, Any]) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _malformed(f"{where} is a {type(value).__name__}, not a string", context)
    return value


def _json_obj(raw: Any, where: str, context: dict[str, Any]) -> dict[str, Any]:
    text = _text(raw, where, context)
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise _malformed(f"{where} is not JSON", context) from None
    return _obj(value, where, context)


def _apply(rt: Runtime, payload: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    user = _obj(payload.get("user"), "payload.user", context)
    slack_user = _text(user.get("id"), "payload.user.id", context)
    person = _person_for(rt, slack_user)
    context |= {"slack_user": slack_user, "person": person}
    if person is None:
        raise Refused(
            403, "unknown_slack_user", f"Slack user {slack_user!r} is not in people.yaml", **context
        )
    kind = payload.get("type")
    try:
        if kind == "block_actions":
            return _block_action(rt, person, slack_user, payload, context)
        if kind == "view_submission":
            view = _obj(payload.get("view"), "payload.view", context)
            if view.get("callback_id") == WAIVER_CALLBACK:
                return _waiver_submitted(rt, person, view, context)
            if view.get("callback_id") == DECISION_CALLBACK:
                return _decision_submitted(rt, person, slack_user, view, context)
    except RecordNotFound as missing:
        raise Refused(400, "unknown_record", str(missing), **context) from None
    raise Refused(400, "unsupported", f"interaction type {kind!r} is not handled", **context)


def _block_action(
    rt: Runtime, person: str, slack_user: str, payload: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions:
        raise _malformed("block_actions without a list of actions", context)
    action = _obj(actions[0], "payload.actions[0]", context)
    name = _text(action.get("action_id"), "action_id", context).removeprefix(ACTION_PREFIX)
    value = _json_obj(action.get("value"), "the button value", context)
    context |= {
        "action": name,
        "gate_id": _text(value.get("gate_id"), "gate_id", context) or None,
        "finding_id": _text(value.get("finding_id"), "finding_id", context) or None,
    }
    return _button(
        rt,
        person,
        name,
        context,
        trigger_id=_text(payload.get("trigger_id"), "trigger_id", context),
        credential=f"slack:{slack_user}",
    )


def _button(
    rt: Runtime,
    person: str,
    name: str,
    context: dict[str, Any],
    *,
    trigger_id: str,
    credential: str,
) -> dict[str, Any]:
    if name in ("approve", "reject"):
        return _ask_reason(rt, person, name, context, trigger_id=trigger_id)
    finding_id = context.get("finding_id")
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
        days = _max_waiver_days(rt, finding.model)
        opener = getattr(rt.notifier, "open_view", None)
        if opener is None or not trigger_id:
            return {"ok": True, "modal": "not opened (no Slack client)", "max_days": days}
        delivery = opener(trigger_id, waiver_modal(finding_id, context.get("gate_id"), days))
        return {"ok": bool(delivery.ok), "modal": "opened" if delivery.ok else delivery.error}
    raise Refused(400, "unsupported", f"unknown action {name!r}", **context)


def _max_waiver_days(rt: Runtime, model: str) -> int:
    return max(1, rt.config.tier(rt.config.model(model)).waiver_max // timedelta(days=1))


def _decide(
    rt: Runtime,
    person: str,
    name: str,
    gate_id: str | None,
    context: dict[str, Any],
    *,
    credential: str,
    reason: str,
) -> dict[str, Any]:
    from prodcontrol.control.gates import decisions

    if not gate_id:
        raise Refused(400, "bad_payload", "button carries no gate id", **context)
    gate = rt.store.get_gate(gate_id)
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
            reason=reason,
            credential=credential,
        )
    except DecisionRefused as exc:
        raise Refused(403, "decision_refused", str(exc), **context) from None
    except UnreachableError as exc:
        # the decision is recorded; its registry action is queued and the ticker retries it
        decided = rt.store.get_gate(gate.id)
        escalation.gate_decided(rt, decided.id)
        return {"ok": True, "gate": decided.id, "status": decided.status, "action_error": str(exc)}
    updates = escalation.gate_decided(rt, decided.id) if decided.status != "pending" else 0
    return {"ok": True, "gate": decided.id, "status": decided.status, "messages_to_update": updates}


def _ask_reason(
    rt: Runtime, person: str, name: str, context: dict[str, Any], *, trigger_id: str
) -> dict[str, Any]:
    """Approve and Reject open a modal for the reason; its submission decides the gate."""
    gate_id = context.get("gate_id")
    if not gate_id:
        raise Refused(400, "bad_payload", "button carries no gate id", **context)
    gate = rt.store.get_gate(gate_id)
    context["model"] = gate.model
    entry = rt.config.model(gate.model)
    if person not in rt.config.holders_of(entry, gate.right):  # type: ignore[arg-type]
        raise Refused(
            403,
            "no_right",
            f"{person} does not hold the {gate.right} right on {gate.model}",
            **context,
        )
    opener = getattr(rt.notifier, "open_view", None)
    if opener is None or not trigger_id:
        return {"ok": True, "modal": "not opened (no Slack client)", "gate": gate.id}
    summary = f"*{gate.model}* v{gate.model_version}: gate `{gate.id[:8]}` ({gate.kind})"
    delivery = opener(trigger_id, decision_modal(gate.id, name, summary))
    return {"ok": bool(delivery.ok), "modal": "opened" if delivery.ok else delivery.error}


def _decision_submitted(
    rt: Runtime, person: str, slack_user: str, view: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    meta = _json_obj(view.get("private_metadata"), "view.private_metadata", context)
    gate_id = _text(meta.get("gate_id"), "private_metadata.gate_id", context)
    name = _text(meta.get("decision"), "private_metadata.decision", context)
    context |= {"action": name, "gate_id": gate_id or None}
    if name not in ("approve", "reject"):
        raise _malformed(f"private_metadata names decision {name!r}", context)
    state = _obj(view.get("state"), "view.state", context)
    values = _obj(state.get("values"), "view.state.values", context)
    reason = _state_value(values, "reason", context).strip()
    if not reason:
        return {"response_action": "errors", "errors": {"reason": f"Say why you {name}."}}
    _decide(rt, person, name, gate_id, context, credential=f"slack:{slack_user}", reason=reason)
    return {"response_action": "clear"}


def _state_value(values: dict[str, Any], block: str, context: dict[str, Any]) -> str:
    field = _obj(values.get(block), f"view.state.values.{block}", context)
    inner = _obj(field.get("value"), f"view.state.values.{block}.value", context)
    return _text(inner.get("value"), f"view.state.values.{block}.value.value", context)


def _waiver_submitted(
    rt: Runtime, person: str, view: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    from prodcontrol.control.gates import waivers

    meta = _json_obj(view.get("private_metadata"), "view.private_metadata", context)
    finding_id = _text(meta.get("finding_id"), "private_metadata.finding_id", context)
    state = _obj(view.get("state"), "view.state", context)
    values = _obj(state.get("values"), "view.state.values", context)
    reason = _state_value(values, "reason", context).strip()
    days_text = _state_value(values, "days", context).strip() or "0"
    context |= {"action": "waiver", "finding_id": finding_id or None}
    if not finding_id:
        raise _malformed("private_metadata carries no finding id", context)
    finding = rt.store.get_finding(finding_id)
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
    most = _max_waiver_days(rt, finding.model)
    days = int(days_text) if days_text.isdigit() and len(days_text) <= 6 else 0
    if not 1 <= days <= most:
        return {
            "response_action": "errors",
            "errors": {"days": f"Give a whole number of days from 1 to {most}."},
        }
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


def _record_refusal(rt: Runtime, refused: Refused, signature: str) -> None:
    """Only for signed requests: the signature names the request (never repeated: replays
    were refused before)."""
    context = {k: v for k, v in refused.context.items() if k != "model"}
    rt.store.record_event(
        "slack.request_refused",
        "slack_request",
        hashlib.sha256(signature.encode()).hexdigest()[:32],
        refused.context.get("model"),
        {"status": refused.status, "refused": refused.code, "why": refused.message, **context},
    )
