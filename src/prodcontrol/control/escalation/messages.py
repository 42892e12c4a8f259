"""Messages people can act on: Slack Block Kit built from the facts of a run's findings.

One message per recipient per escalation step lists every failing control of the run (worst
first, at most :data:`MAX_CONTROL_LINES` lines); a run with one finding keeps the one-control
layout.

The same blocks feed Slack and the terminal/file outbox (:func:`plain_text` renders them), so
the demo shows exactly what an owner would get. Buttons appear only where the recipient holds
the right; the interactivity endpoint checks the right again, since a message can be forwarded.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Button = Literal["approve", "reject", "acknowledge", "request_waiver"]
BUTTON_LABELS: dict[Button, str] = {
    "approve": "Approve",
    "reject": "Reject",
    "acknowledge": "Acknowledge",
    "request_waiver": "Request waiver",
}
ACTION_PREFIX = "prodcontrol_"
WAIVER_CALLBACK = "prodcontrol_waiver"
DECISION_CALLBACK = "prodcontrol_decision"


MAX_CONTROL_LINES = 8
"""Controls listed one per line in a message; the rest are counted ("and N more")."""


class ControlFacts(BaseModel):
    """One failing control of the run: its verdict and numbers against its thresholds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    control_id: str
    control_title: str = ""
    verdict: str
    value: float | None = None
    warn: float | None = None
    fail: float | None = None
    direction: str = "higher_is_worse"
    unit: str = ""
    reason: str = ""
    finding_id: str | None = None


class MessageFacts(BaseModel):
    """Everything a message says about a run's findings (the worst one in the flat fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    model_version: str
    tier: str
    stage: str
    control_id: str
    control_title: str = ""
    verdict: str
    value: float | None = None
    warn: float | None = None
    fail: float | None = None
    direction: str = "higher_is_worse"
    unit: str = ""
    reason: str = ""
    since: datetime
    told: list[str] = Field(default_factory=list)
    evidence_url: str | None = None
    prefect_url: str | None = None
    finding_id: str
    gate_id: str | None = None
    reminder: bool = False
    controls: list[ControlFacts] = Field(
        default_factory=list,
        description="every failing control the message covers, worst first (empty: just this one)",
    )


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    return f"{value:.4g}{' ' + unit if unit else ''}"


def summary(facts: MessageFacts) -> str:
    """One line that works as the notification text (Slack shows it in previews)."""
    head = "Reminder: " if facts.reminder else ""
    model = f"{head}{facts.model} v{facts.model_version} ({facts.tier} tier, {facts.stage}): "
    if len(facts.controls) > 1:
        worst = facts.controls[0]
        return (
            f"{model}{len(facts.controls)} controls failing, worst "
            f"{worst.control_id} {worst.verdict.upper()}"
        )
    return f"{model}control {facts.control_id} is {facts.verdict.upper()}"


def control_lines(facts: MessageFacts, limit: int = MAX_CONTROL_LINES) -> list[str]:
    """One line per failing control, worst first, at most ``limit`` (then "and N more")."""
    lines = [
        f"*{c.control_id}* {c.verdict.upper()}: {numbers_line(c)}" for c in facts.controls[:limit]
    ]
    rest = len(facts.controls) - limit
    if rest > 0:
        lines.append(f"and {rest} more (see the evidence)")
    return lines


def numbers_line(facts: MessageFacts | ControlFacts) -> str:
    """The numbers against the thresholds; for a control that could not be measured, why."""
    if facts.value is None and facts.reason:
        return f"could not be measured: {_clip(facts.reason)}"
    worse = "above" if facts.direction == "higher_is_worse" else "below"
    limits = [
        f"{name} {worse} {_number(v, facts.unit)}"
        for name, v in (("warn", facts.warn), ("fail", facts.fail))
        if v is not None
    ]
    measured = _number(facts.value, facts.unit)
    return f"measured {measured}; thresholds: {', '.join(limits) or 'none'}"


def _clip(text: str, limit: int = 300) -> str:
    """A reason short enough for a Slack field (the evidence has it whole)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def escalation_message(
    facts: MessageFacts, buttons: list[Button]
) -> tuple[str, list[dict[str, Any]]]:
    """The text and Block Kit blocks for one recipient, with the buttons they may use."""
    text = summary(facts)
    if len(facts.controls) > 1:
        return text, _run_blocks(facts, text, buttons)
    fields = [
        _field("Model", f"{facts.model} v{facts.model_version}"),
        _field("Tier / stage", f"{facts.tier} / {facts.stage}"),
        _field(
            "Control",
            f"{facts.control_id}" + (f" ({facts.control_title})" if facts.control_title else ""),
        ),
        _field("Verdict", facts.verdict.upper()),
        _field("Numbers", numbers_line(facts)),
        _field("Since", facts.since.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {"type": "section", "fields": fields},
    ]
    if facts.reason:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": facts.reason}})
    blocks.append(_context_block(facts))
    blocks.extend(_actions_blocks(facts, buttons))
    return text, blocks


def _run_blocks(facts: MessageFacts, text: str, buttons: list[Button]) -> list[dict[str, Any]]:
    """Several failing controls of one run: one message, one line per control, worst first."""
    fields = [
        _field("Model", f"{facts.model} v{facts.model_version}"),
        _field("Tier / stage", f"{facts.tier} / {facts.stage}"),
        _field("Failing controls", str(len(facts.controls))),
        _field("Since", facts.since.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    listing = "\n".join(control_lines(facts))
    return [
        {"type": "header", "text": {"type": "plain_text", "text": text[:150]}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn", "text": listing[:3000]}},
        _context_block(facts),
        *_actions_blocks(facts, buttons),
    ]


def _context_block(facts: MessageFacts) -> dict[str, Any]:
    told = ", ".join(facts.told) if facts.told else "nobody else yet"
    links = [f"<{facts.evidence_url}|Evidence>" if facts.evidence_url else ""]
    links.append(f"<{facts.prefect_url}|Prefect run>" if facts.prefect_url else "")
    context = [{"type": "mrkdwn", "text": f"Also told: {told}"}]
    if any(links):
        context.append({"type": "mrkdwn", "text": " · ".join(x for x in links if x)})
    return {"type": "context", "elements": context}


def _actions_blocks(facts: MessageFacts, buttons: list[Button]) -> list[dict[str, Any]]:
    if not buttons:
        return []
    value = json.dumps({"finding_id": facts.finding_id, "gate_id": facts.gate_id})
    return [
        {
            "type": "actions",
            "block_id": "prodcontrol_actions",
            "elements": [_button(name, value) for name in buttons],
        }
    ]


def decided_blocks(blocks: list[dict[str, Any]], line: str) -> list[dict[str, Any]]:
    """The original message without its buttons, with who decided what (for ``chat.update``)."""
    kept = [b for b in blocks if b.get("type") != "actions"]
    kept.append({"type": "section", "text": {"type": "mrkdwn", "text": f":lock: {line}"}})
    return kept


def decision_modal(gate_id: str, decision: str, summary: str) -> dict[str, Any]:
    """The modal an Approve or Reject button opens: the decision needs its reason."""
    verb = "Approve" if decision == "approve" else "Reject"
    return {
        "type": "modal",
        "callback_id": DECISION_CALLBACK,
        "private_metadata": json.dumps({"gate_id": gate_id, "decision": decision}),
        "title": {"type": "plain_text", "text": f"{verb} the gate"},
        "submit": {"type": "plain_text", "text": verb},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": summary[:2900]}},
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": f"Why {decision}? (kept as evidence)"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
            },
        ],
    }


def waiver_modal(finding_id: str, gate_id: str | None, max_days: int) -> dict[str, Any]:
    """The modal that asks for a waiver's reason and expiry."""
    return {
        "type": "modal",
        "callback_id": WAIVER_CALLBACK,
        "private_metadata": json.dumps({"finding_id": finding_id, "gate_id": gate_id}),
        "title": {"type": "plain_text", "text": "Request a waiver"},
        "submit": {"type": "plain_text", "text": "Request"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Why is this finding acceptable?"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
            },
            {
                "type": "input",
                "block_id": "days",
                "label": {
                    "type": "plain_text",
                    "text": f"Expires after (days, at most {max_days})",
                },
                "element": {
                    "type": "number_input",
                    "action_id": "value",
                    "is_decimal_allowed": False,
                },
            },
        ],
    }


def plain_text(text: str, blocks: list[dict[str, Any]]) -> str:
    """Blocks as terminal text: what the outbox prints and appends to its file."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(str(block["text"]["text"]))
        elif kind == "section":
            if "text" in block:
                lines.append(str(block["text"]["text"]).replace("*", ""))
            for item in block.get("fields", []):
                lines.append("  " + str(item["text"]).replace("*", ""))
        elif kind == "context":
            lines.extend("  " + str(e.get("text", "")) for e in block.get("elements", []))
        elif kind == "actions":
            labels = [str(e["text"]["text"]) for e in block.get("elements", [])]
            lines.append("  [" + "] [".join(labels) + "]")
    return "\n".join(lines) if lines else text


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}:* {value}"}


def _button(name: Button, value: str) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_PREFIX + name,
        "text": {"type": "plain_text", "text": BUTTON_LABELS[name]},
        "value": value,
    }
    if name == "approve":
        button["style"] = "primary"
    elif name == "reject":
        button["style"] = "danger"
    return button
