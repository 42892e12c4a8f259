"""``/decide/<token>``: the decision page a right holder reaches from an e-mail.

The signed token is the credential (see :mod:`prodcontrol.control.gates.decision_links`): no proxy
header or web token is needed, and none is trusted instead. A forged, altered or expired link is
refused (403) and counted in ``/metrics``, never chained; a decision goes through
:func:`prodcontrol.control.gates.decisions.decide` like every other channel, so rights, two distinct
people and separation of duties apply, and a second use of the same link is refused by the rule that
a person decides a gate once.
"""

from __future__ import annotations

from typing import Annotated, Any, cast
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from prodcontrol.control.gates import decision_links
from prodcontrol.control.gates.decision_links import DecisionLink, LinkRefused
from prodcontrol.errors import DecisionRefused, ProdControlError
from prodcontrol.runtime import Runtime
from prodcontrol.web import metrics
from prodcontrol.web.deps import get_runtime
from prodcontrol.web.render import render

router = APIRouter()
Rt = Annotated[Runtime, Depends(get_runtime)]


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, viewer=None, **context), status_code=status)


def _refused(message: str, status: int = 403) -> HTMLResponse:
    return _page("message.html", status, heading="Decision refused", message=message, back="")


def _link(rt: Runtime, token: str) -> DecisionLink | HTMLResponse:
    secret = rt.settings.web_link_secret
    if secret is None:
        metrics.count("decision_link_refused", "no_secret")
        return _refused("decision links are not enabled here (web_link_secret is unset)")
    try:
        link = decision_links.verify(secret.get_secret_value(), token, rt.clock.now())
    except LinkRefused as exc:
        metrics.count("decision_link_refused", "bad_link")
        return _refused(str(exc))
    if link.person not in rt.config.inventory.people:
        metrics.count("decision_link_refused", "unknown_person")
        return _refused(f"{link.person} is no longer in people.yaml")
    return link


@router.get("/decide/{token}", response_class=HTMLResponse)
def decide_page(token: str, rt: Rt) -> Response:
    from prodcontrol.control.gates.decisions import covered_findings, who_could_decide

    link = _link(rt, token)
    if isinstance(link, HTMLResponse):
        return link
    try:
        gate = rt.store.get_gate(link.gate_id)
    except ProdControlError as exc:
        return _refused(str(exc), 404)
    if gate.status != "pending":
        return _refused(f"this gate is already {gate.status}; nothing is left to decide", 409)
    if link.person not in who_could_decide(rt, gate):
        return _refused(
            f"{link.person} may not decide this gate now (already decided, or the rules "
            "no longer allow it)",
            409,
        )
    decisions = rt.store.decisions_for(gate.id)
    findings = covered_findings(rt, gate)
    return _page(
        "decide_link.html",
        gate=gate,
        person=rt.config.inventory.people[link.person],
        approvals=", ".join(d.person for d in decisions if d.decision == "approve") or "none",
        findings=findings,
        action=f"{decision_links.PATH}{token}",
        expires_at=link.expires_at,
    )


@router.post("/decide/{token}", response_class=HTMLResponse)
async def decide_by_link(token: str, request: Request, rt: Rt) -> Response:
    from prodcontrol.control.gates.decisions import decide

    link = _link(rt, token)
    if isinstance(link, HTMLResponse):
        return link
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8")).items()}
    decision = form.get("decision", "")
    reason = form.get("reason", "").strip()
    if decision not in ("approve", "reject") or not reason:
        return _refused("choose approve or reject and give a reason", 400)
    try:
        gate = decide(
            rt,
            link.gate_id,
            person=link.person,
            decision=cast(Any, decision),
            channel="web",
            reason=reason,
            credential=link.credential,
        )
    except DecisionRefused as exc:
        return _refused(str(exc))
    except ProdControlError as exc:
        return _refused(str(exc), 409)
    return _page(
        "message.html",
        heading="Decision recorded",
        message=f"{link.person} {decision}d {gate.model} version {gate.model_version}; "
        f"the gate is {gate.status}",
        back="",
    )
