"""Which channel an outbox message goes out on: Slack, or e-mail.

A person with an e-mail and no Slack id is e-mailed; a message the ticker re-queued for e-mail
because Slack stayed down (``via="email"``) is e-mailed; everything else goes to Slack. The
outbox, its leases, retries and dead letters are the same for both: routing happens per
delivery attempt, so a row is still delivered once, on the channel its recipient has.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prodcontrol.adapters.smtp import SmtpNotifier
from prodcontrol.catalog.schema import Person
from prodcontrol.control.escalation.outbox import SentLookup
from prodcontrol.ports import Delivery, Notifier, OutboundMessage


class RoutedNotifier:
    """Slack for people with a Slack id and for channels; e-mail for the rest."""

    def __init__(self, slack: Notifier, email: SmtpNotifier, people: Mapping[str, Person]) -> None:
        self.slack, self.email, self.people = slack, email, people

    def route(self, message: OutboundMessage) -> Notifier:
        if message.via == "email":
            return self.email
        if message.recipient_kind == "person":
            person = self.people.get(message.recipient)
            if person is not None and person.slack_id is None and person.email:
                return self.email
        return self.slack

    def send(self, message: OutboundMessage) -> Delivery:
        return self.route(message).send(message)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        target: Notifier = self.email if channel.startswith("email:") else self.slack
        return target.update(channel, ts, text, blocks)

    def find_sent(self, message: OutboundMessage) -> Delivery | None:
        target = self.route(message)
        return target.find_sent(message) if isinstance(target, SentLookup) else None
