"""Escalation by e-mail, against a real SMTP server (aiosmtpd) and the local Slack API server.

The inventory is a copy of the examples in which Emeka (medium tier's first step) has an
e-mail and no Slack id, as many people in a regulated company do.
"""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from slack_helpers import MODEL, failing_finding, open_gate

from prodcontrol.adapters.routing import RoutedNotifier
from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeRegistry, ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer
from prodcontrol.web.app import create_app
from smtp_helpers import LocalSmtpServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EMEKA, DANA = "emeka.adeyemi@example.com", "dana.fischer@example.com"
LINK_SECRET = "link-secret-for-tests"


def inventory_without_slack(tmp_path: Path, person: str = "emeka") -> Path:
    inventory = tmp_path / "inventory"
    shutil.copytree(EXAMPLES, inventory)
    people = inventory / "people.yaml"
    text = people.read_text()
    changed = re.sub(rf"(id: {person},[^\n]*?), slack_id: \w+", r"\1", text)
    assert changed != text
    people.write_text(changed)
    return inventory


def runtime(  # noqa: PLR0917 - the worlds a test needs, in the order tests name them
    tmp_path: Path,
    inventory: Path,
    database_url: str,
    clock: ManualClock,
    slack: LocalSlackServer,
    smtp: LocalSmtpServer,
    **extra: Any,
) -> Runtime:
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inventory,
        database_url=database_url,
        slack_bot_token=SecretStr(slack.token),
        slack_base_url=slack.base_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_from="prodcontrol@bank.example",
        web_link_secret=SecretStr(LINK_SECRET),
        web_base_url="https://controls.bank.example",
        **extra,
    )
    registry = FakeRegistry()
    rt = Runtime(settings, clock, registry=registry)
    for name in rt.config.inventory.models:
        registry.add_version(name, "3")
        registry.set_alias(name, "champion", "3")
    return rt


def drain(rt: Runtime) -> Any:
    sender = OutboxSender(rt.store, rt.notifier, rt.clock, workers=1, backoff_base=1.0)
    try:
        return sender.drain()
    finally:
        sender.close()


@pytest.fixture
def smtp() -> Any:
    server = LocalSmtpServer()
    server.start()
    yield server
    server.stop()


def body(message: Any) -> str:
    return str(message.get_content())


def test_person_without_slack_id_is_emailed_once_with_evidence_and_decision_link(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer, smtp: LocalSmtpServer
) -> None:
    clock = ManualClock()
    rt = runtime(
        tmp_path, inventory_without_slack(tmp_path), database_url, clock, slack_server, smtp
    )
    assert isinstance(rt.notifier, RoutedNotifier)  # built from the smtp_* settings
    finding = failing_finding(rt)
    gate = open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    assert drain(rt).sent == 1
    assert drain(rt).claimed == 0  # nothing left: once only
    [mail] = smtp.messages()
    assert EMEKA in str(mail["To"]) and slack_server.messages() == []
    assert MODEL in str(mail["Subject"]) and str(mail["Subject"]).startswith("[prodcontrol]")
    text = body(mail)
    assert "dataset-drift" in text and "0.42" in text
    assert f"https://controls.bank.example/runs/{finding.run_id}" in text  # the evidence link
    [link] = re.findall(r"https://controls\.bank\.example(/decide/\S+)", text)
    note = rt.store.list_notifications()[0]
    assert note.status == "sent" and note.provider_ref["channel"] == f"email:{EMEKA}"

    # the link opens the decision page with no other credential and decides as Emeka, once
    client = TestClient(create_app(rt))
    page = client.get(link)
    assert page.status_code == 200 and "Emeka Adeyemi" in page.text
    done = client.post(link, data={"decision": "approve", "reason": "drift explained"})
    assert done.status_code == 200, done.text
    assert rt.store.get_gate(gate.id).status == "approved"
    [decision] = rt.store.decisions_for(gate.id)
    assert (decision.person, decision.channel) == ("emeka", "web")
    again = client.post(link, data={"decision": "reject", "reason": "second try"})
    assert again.status_code in {403, 409}
    assert len(rt.store.decisions_for(gate.id)) == 1


def test_a_forged_or_altered_link_decides_nothing(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer, smtp: LocalSmtpServer
) -> None:
    from prodcontrol.control.gates import decision_links
    from prodcontrol.web import metrics

    clock = ManualClock()
    rt = runtime(
        tmp_path, inventory_without_slack(tmp_path), database_url, clock, slack_server, smtp
    )
    finding = failing_finding(rt)
    gate = open_gate(rt, finding)
    client = TestClient(create_app(rt))
    real = decision_links.DecisionLink(gate.id, "emeka", clock.now() + timedelta(days=1))
    token = decision_links.sign(LINK_SECRET, real)
    body_, mac = token.split(".")
    as_dana = decision_links.sign(LINK_SECRET, real.__class__(gate.id, "dana", real.expires_at))
    forged = [
        f"{as_dana.split('.')[0]}.{mac}",  # another person under Emeka's signature
        decision_links.sign("guessed-secret", real),  # signed with the wrong key
        f"{body_}.{mac[:-2]}AA",
        "not-a-token",
    ]
    before = metrics.value("decision_link_refused", "bad_link")
    for bad in forged:
        answer = client.post(f"/decide/{bad}", data={"decision": "approve", "reason": "x"})
        assert answer.status_code == 403, bad
    assert metrics.value("decision_link_refused", "bad_link") == before + len(forged)
    expired = decision_links.sign(
        LINK_SECRET, real.__class__(gate.id, "emeka", clock.now() - timedelta(seconds=1))
    )
    assert client.get(f"/decide/{expired}").status_code == 403
    # a link for someone without the right opens nothing either (bruno: no escalation_outcome)
    bruno = decision_links.sign(LINK_SECRET, real.__class__(gate.id, "bruno", real.expires_at))
    refused = client.post(f"/decide/{bruno}", data={"decision": "approve", "reason": "x"})
    assert refused.status_code == 403
    assert rt.store.decisions_for(gate.id) == [] and rt.store.get_gate(gate.id).status == "pending"


def test_a_crash_after_the_relay_accepted_sends_no_second_email(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer, smtp: LocalSmtpServer
) -> None:
    from prodcontrol.control.escalation.outbox import to_message

    clock = ManualClock()
    rt = runtime(
        tmp_path, inventory_without_slack(tmp_path), database_url, clock, slack_server, smtp
    )
    finding = failing_finding(rt)
    open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    # a sender claims the row and the relay accepts the mail, then the process dies
    [claimed] = rt.store.claim_due_notifications(clock.now(), 10, lease_seconds=60)
    assert rt.notifier.send(to_message(claimed)).ok
    clock.advance(timedelta(minutes=2))  # the lease runs out; another sender claims it again
    report = drain(rt)
    assert (report.sent, report.already_sent) == (0, 1)
    assert len(smtp.messages()) == 1
    assert rt.store.list_notifications()[0].status == "sent"


def test_smtp_outage_is_retried_and_delivered_once(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer, smtp: LocalSmtpServer
) -> None:
    clock = ManualClock()
    rt = runtime(
        tmp_path, inventory_without_slack(tmp_path), database_url, clock, slack_server, smtp
    )
    finding = failing_finding(rt)
    open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    smtp.stop()
    report = drain(rt)
    assert (report.sent, report.retried) == (0, 1)
    [note] = rt.store.list_notifications()
    assert note.status == "pending" and "smtp_unreachable" in (note.last_error or "")
    smtp.start()
    clock.advance(timedelta(seconds=5))
    assert drain(rt).sent == 1 and len(smtp.messages()) == 1
    [attempt_1, attempt_2] = rt.store.attempts_for(note.id)
    assert (attempt_1.outcome, attempt_2.outcome) == ("retry", "ok")


def test_while_slack_is_down_past_the_tier_limit_everyone_is_emailed(
    tmp_path: Path, database_url: str, slack_server: LocalSlackServer, smtp: LocalSmtpServer
) -> None:
    clock = ManualClock()
    rt = runtime(tmp_path, EXAMPLES, database_url, clock, slack_server, smtp)
    # a Slack client that gives up fast, so the outage shows in the outbox at once
    rt.__dict__["notifier"] = RoutedNotifier(
        SlackNotifier(
            slack_server.token,
            people=rt.config.inventory.people,
            base_url=slack_server.base_url,
            retries=0,
            backoff=0.01,
        ),
        rt.email_notifier(),
        rt.config.inventory.people,
    )
    slack_server.inject(None, status=500, times=1000)
    finding = failing_finding(rt)
    open_gate(rt, finding)
    escalation.after_run(rt, finding.run_id)
    assert drain(rt).retried == 1  # Emeka's Slack DM fails
    assert smtp.messages() == []
    clock.advance(timedelta(hours=3, minutes=59))  # medium tier: acknowledge within 4h
    assert escalation.tick(rt).emailed == 0
    clock.advance(timedelta(minutes=1))
    ticked = escalation.tick(rt)  # 4h: the chain moves to Dana too, Emeka's copy goes by e-mail
    assert ticked.emailed == 1
    drain(rt)
    assert [str(m["To"]) for m in smtp.messages()] == [f"Emeka Adeyemi <{EMEKA}>"]
    clock.advance(timedelta(hours=4))
    assert escalation.tick(rt).emailed == 1  # Dana's Slack DM is now stuck past the limit too
    drain(rt)
    assert {m["To"].addresses[0].addr_spec for m in smtp.messages()} == {EMEKA, DANA}
    for _ in range(3):  # later ticks queue no second copy
        clock.advance(timedelta(hours=1))
        escalation.tick(rt)
        drain(rt)
    sent_to = [m["To"].addresses[0].addr_spec for m in smtp.messages()]
    assert sorted(sent_to) == sorted(set(sent_to))
    assert slack_server.messages() == []


def test_starttls_and_login_and_no_password_in_clear(
    tmp_path: Path,
    database_url: str,
    slack_server: LocalSlackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secure = LocalSmtpServer(tls_dir=tmp_path, users={"prodcontrol": "s3cret"})
    secure.start()
    plain = LocalSmtpServer()
    plain.start()
    try:
        # the company CA, as a relay's certificate would be trusted in production
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp-cert.pem"))
        inventory = inventory_without_slack(tmp_path)
        clock = ManualClock()
        rt = runtime(
            tmp_path,
            inventory,
            database_url,
            clock,
            slack_server,
            secure,
            smtp_username="prodcontrol",
            smtp_password=SecretStr("s3cret"),
        )
        finding = failing_finding(rt)
        open_gate(rt, finding)
        escalation.after_run(rt, finding.run_id)
        assert drain(rt).sent == 1
        assert len(secure.messages()) == 1 and secure.handler.logins == ["prodcontrol"]

        # the same login against a relay that offers no STARTTLS: refused, never sent in clear
        leaky = runtime(
            tmp_path / "b",
            inventory,
            database_url,
            clock,
            slack_server,
            plain,
            smtp_username="prodcontrol",
            smtp_password=SecretStr("s3cret"),
        )
        other = failing_finding(leaky)  # a second run of the same version: no second gate
        escalation.after_run(leaky, other.run_id)
        report = drain(leaky)
        assert report.sent == 0 and len(report.dead) == 1
        dead = leaky.store.list_notifications(status="dead")
        assert any("smtp_no_tls" in (n.last_error or "") for n in dead)
        assert plain.messages() == []
    finally:
        secure.stop()
        plain.stop()
