"""E-mail escalations over SMTP (stdlib ``smtplib``), behind the same Notifier port as Slack.

One outbox row is one e-mail. Once-only across crashes, as far as SMTP allows: SMTP cannot be
asked what it already accepted, so the notifier keeps a journal of the keys the relay accepted
(``<state_dir>/smtp-sent.jsonl``, appended and flushed the moment the relay says 250) and
``find_sent`` reads it before a claimed-again row is sent; every message also carries a
``Message-ID`` derived from its key, so the one window left (a crash between the relay's 250 and
the journal write) delivers the same Message-ID twice, which mail clients show once.

STARTTLS is used whenever the relay offers it, and required before a login: a password never
crosses the wire in clear. A refused recipient is permanent (dead-lettered, the chain moves on);
a relay that cannot be reached or answers 4xx is retried with the outbox's backoff.
"""

from __future__ import annotations

import hashlib
import json
import re
import smtplib
import ssl
import threading
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from typing import Any

from prodcontrol.catalog.schema import Person
from prodcontrol.ports import Delivery, OutboundMessage

TIMEOUT_S = 20.0
Links = Callable[[OutboundMessage], list[tuple[str, str]]]
"""Extra lines for a message: ``(label, url)`` pairs (evidence, the decision link)."""


def message_id(key: str, domain: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


_SLACK_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def _plain(mrkdwn: str) -> str:
    """Slack's mrkdwn as plain text: ``<url|label>`` becomes ``label (url)``, no ``*bold*``."""
    text = _SLACK_LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", mrkdwn)
    return text.replace("*", "").replace("`", "")


def blocks_text(blocks: list[dict[str, Any]]) -> list[str]:
    """The readable lines of a Slack message's blocks (buttons left out: e-mail has links)."""
    lines: list[str] = []
    for block in blocks:
        parts = [block.get("text"), *(block.get("fields") or [])]
        if block.get("type") == "context":
            parts += list(block.get("elements") or [])
        for part in parts:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                lines += [_plain(part["text"]), ""]
    return lines


class SmtpNotifier:
    """Sends each escalation to the person's e-mail address through an SMTP relay."""

    channel = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        people: Mapping[str, Person],
        journal: Path,
        username: str | None = None,
        password: str | None = None,
        links: Links | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.people, self.journal = people, journal
        self.username, self.password = username, password
        self.links = links or (lambda _message: [])
        self.tls_context = tls_context or ssl.create_default_context()
        self.domain = sender.rpartition("@")[2] or "prodcontrol.invalid"
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ Notifier

    def send(self, message: OutboundMessage) -> Delivery:
        address = self.address_of(message)
        if address is None:
            return Delivery(
                ok=False,
                error=f"unknown_person: {message.recipient!r} has no e-mail in people.yaml",
            )
        mail = self.compose(message, address)
        return self._deliver(mail, address, message.idempotency_key)

    def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> Delivery:
        """An e-mail cannot be edited: the change goes out as a reply to the first message."""
        address = channel.removeprefix("email:")
        mail = EmailMessage()
        mail["From"] = formataddr(("prodcontrol", self.sender))
        mail["To"] = address
        mail["Subject"] = f"Re: {text.split(' | ', maxsplit=1)[0][:120]}"
        mail["In-Reply-To"] = ts
        mail["References"] = ts
        mail["Date"] = formatdate(localtime=False)
        key = f"update:{ts}:{text[-64:]}"
        mail["Message-ID"] = message_id(key, self.domain)
        mail.set_content(text.replace(" | ", "\n\n") + "\n")
        return self._deliver(mail, address, key)

    def find_sent(self, message: OutboundMessage) -> Delivery | None:
        """The journal's entry for this key: the relay accepted it before, do not send again."""
        key = message.idempotency_key
        try:
            lines = self.journal.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        except OSError as exc:  # unreadable: never send blind
            return Delivery(ok=False, error=f"smtp journal unreadable: {exc}")
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash mid-write
            if entry.get("key") == key:
                return Delivery(
                    ok=True,
                    channel=f"email:{entry.get('to')}",
                    ts=str(entry.get("message_id")),
                    already_sent=True,
                )
        return None

    # ------------------------------------------------------------------ composing

    def address_of(self, message: OutboundMessage) -> str | None:
        if message.recipient_kind != "person":
            return None
        person = self.people.get(message.recipient)
        return person.email if person is not None else None

    def compose(self, message: OutboundMessage, address: str) -> EmailMessage:
        person = self.people.get(message.recipient)
        lines = message.text.splitlines() or ["prodcontrol escalation"]
        mail = EmailMessage()
        mail["From"] = formataddr(("prodcontrol", self.sender))
        mail["To"] = formataddr((person.name if person else "", address))
        mail["Subject"] = f"[prodcontrol] {lines[0][:150]}"
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(message.idempotency_key, self.domain)
        mail["X-Prodcontrol-Key"] = message.idempotency_key
        mail["Auto-Submitted"] = "auto-generated"
        body = [message.text, "", *blocks_text(message.blocks)]
        for label, link in self.links(message):
            body += [f"{label}:", link, ""]
        body.append("-- \nprodcontrol: production controls. Reply-to is not monitored.")
        mail.set_content("\n".join(body))
        return mail

    # ------------------------------------------------------------------ SMTP

    def _deliver(self, mail: EmailMessage, address: str, key: str) -> Delivery:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=TIMEOUT_S) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self.tls_context)
                    smtp.ehlo()
                elif self.username:
                    return Delivery(
                        ok=False,
                        error=f"smtp_no_tls: {self.host}:{self.port} does not offer STARTTLS; "
                        "refusing to send the SMTP password in clear (use a relay with TLS)",
                    )
                if self.username and self.password is not None:
                    smtp.login(self.username, self.password)
                smtp.send_message(mail, from_addr=self.sender, to_addrs=[address])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            kind = "user_not_found" if all(c >= 500 for c in codes) else "smtp_deferred"
            return Delivery(ok=False, error=f"{kind}: {address} refused: {exc.recipients}")
        except smtplib.SMTPAuthenticationError as exc:
            return Delivery(
                ok=False,
                status_code=exc.smtp_code,
                error=f"invalid_auth: SMTP login as {self.username} refused; check "
                "PRODCONTROL_SMTP_USERNAME / PRODCONTROL_SMTP_PASSWORD",
            )
        except smtplib.SMTPResponseException as exc:
            kind = "smtp_rejected" if exc.smtp_code >= 500 else "smtp_deferred"
            raw = exc.smtp_error
            detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
            return Delivery(
                ok=False, status_code=exc.smtp_code, error=f"{kind}: {exc.smtp_code} {detail}"
            )
        except (smtplib.SMTPException, OSError) as exc:
            return Delivery(ok=False, error=f"smtp_unreachable: {self.host}:{self.port}: {exc}")
        message_id_ = str(mail["Message-ID"])
        self._journal(key, address, message_id_)
        return Delivery(ok=True, channel=f"email:{address}", ts=message_id_, status_code=250)

    def _journal(self, key: str, address: str, message_id_: str) -> None:
        entry = json.dumps({"key": key, "to": address, "message_id": message_id_})
        with self._lock:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            with self.journal.open("a", encoding="utf-8") as out:
                out.write(entry + "\n")
                out.flush()
