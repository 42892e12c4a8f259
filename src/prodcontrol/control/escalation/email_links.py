"""The links an escalation e-mail carries: the evidence page, and for a person who may decide
the gate now, a signed one-time link to its decision page
(:mod:`prodcontrol.control.gates.decision_links`)."""

from __future__ import annotations

from datetime import timedelta

from prodcontrol.control.gates import decision_links
from prodcontrol.control.ports import TickPorts
from prodcontrol.errors import ProdControlError
from prodcontrol.ports import OutboundMessage


def links_for(rt: TickPorts, message: OutboundMessage) -> list[tuple[str, str]]:
    links: list[tuple[str, str]] = []
    if message.evidence_url:
        links.append(("Evidence", message.evidence_url))
    secret = rt.settings.web_link_secret
    if message.gate_id is None or secret is None or message.recipient_kind != "person":
        return links
    from prodcontrol.control.gates.decisions import who_could_decide

    try:
        gate = rt.store.get_gate(message.gate_id)
        may = gate.status == "pending" and message.recipient in who_could_decide(rt, gate)
    except ProdControlError:
        return links
    if may:
        now = rt.clock.now()
        expires = gate.due_at or now + decision_links.DEFAULT_VALIDITY
        link = decision_links.DecisionLink(
            gate.id, message.recipient, max(expires, now + timedelta(hours=1))
        )
        url = decision_links.url(rt.settings.web_base_url, secret.get_secret_value(), link)
        links.append(("Approve or reject (this link is yours alone and works once)", url))
    return links
