"""The web page decides as the person who is there, whoever tries otherwise (issue #15).

Real uvicorn on a free port; the company proxy is 127.0.0.7 (``web_trusted_proxies``), and an
attacker on the same host connects from 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from slack_helpers import failing_finding, make_runtime
from web_world import HEADER, OUTSIDER, PROXY, client, serving

from identity_helpers import TokenBook
from prodcontrol.control.gates import decisions
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime
from prodcontrol.testing import ManualClock
from prodcontrol.web import metrics

HIGH = "fraud-detector"  # two-person gate; holders dana and gustav, chen asked for nothing here
READ_ONLY = "shared-read-only-token"


@dataclass
class Site:
    url: str
    rt: Runtime
    gate: Gate
    tokens: TokenBook

    def proxy(self) -> httpx.Client:
        return client(self.url, PROXY)

    def outsider(self) -> httpx.Client:
        return client(self.url, OUTSIDER)

    def csrf(self, http: httpx.Client, **headers: str) -> str:
        page = http.get(f"/models/{HIGH}", headers=headers)
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, "no decision form on the page"
        return found.group(1)

    def decisions(self) -> list[tuple[str, str]]:
        return [(d.person, d.channel) for d in self.rt.store.decisions_for(self.gate.id)]


@pytest.fixture
def site(tmp_path: Path, database_url: str) -> Iterator[Site]:
    rt = make_runtime(
        tmp_path,
        database_url,
        ManualClock(),
        web_auth_header=HEADER,
        web_trusted_proxies=[f"{PROXY}/32"],
        web_token=SecretStr(READ_ONLY),
    )
    gate = decisions.open_finding_gate(rt, failing_finding(rt, HIGH), "high")
    with serving(rt) as url:
        yield Site(url, rt, gate, TokenBook(rt))


def decide(
    http: httpx.Client, site: Site, csrf: str, reason: str = "checked the drift", **headers: str
) -> httpx.Response:
    form = {"decision": "approve", "reason": reason, "csrf": csrf}
    return http.post(f"/gates/{site.gate.id}/decide", data=form, headers=headers)


def test_the_proxy_header_from_an_untrusted_address_is_ignored_and_counted(site: Site) -> None:
    before = metrics.value("web_untrusted_proxy_header", "ignored")
    with site.outsider() as http:
        assert http.get("/", headers={HEADER: "dana"}).status_code == 401
        spoofed = {HEADER: "dana", "X-Forwarded-For": PROXY, "Forwarded": f"for={PROXY}"}
        assert http.get("/", headers=spoofed).status_code == 401
        answer = http.post(
            f"/gates/{site.gate.id}/decide",
            headers={HEADER: "dana"},
            data={"decision": "approve", "reason": "r"},
        )
        assert answer.status_code == 401
    assert metrics.value("web_untrusted_proxy_header", "ignored") == before + 3
    with site.proxy() as http:
        assert http.get("/", headers={HEADER: "dana"}).status_code == 200
    assert site.decisions() == []


def test_the_header_maps_by_exact_id_or_email_only(site: Site) -> None:
    with site.proxy() as http:
        assert "dana" in http.get("/", headers={HEADER: "dana.fischer@example.com"}).text
        for wrong in ("DANA", "Dana.Fischer@example.com", "U0DANA004", "dana2", "nobody"):
            answer = http.get("/", headers={HEADER: wrong})
            assert answer.status_code == 401, wrong  # never read access for an unknown value


def test_one_person_cannot_close_the_two_person_gate_through_the_web(site: Site) -> None:
    with site.proxy() as http:
        csrf = site.csrf(http, **{HEADER: "dana"})
        assert decide(http, site, csrf, **{HEADER: "dana"}).status_code == 303
        again = decide(http, site, csrf, **{HEADER: "dana"})
        assert again.status_code == 403 and "already decided" in again.text
        # dana's CSRF token does not make a decision for gustav
        stolen = decide(http, site, csrf, **{HEADER: "gustav"})
        assert stolen.status_code == 403 and "another session" in stolen.text
    with site.outsider() as http:  # dana's own Bearer token: still dana
        bearer = {"Authorization": f"Bearer {site.tokens.token('dana')}"}
        answer = decide(http, site, "", **bearer)
        assert answer.status_code == 403 and "already decided" in answer.text
    assert site.rt.store.get_gate(site.gate.id).status == "pending"
    assert site.decisions() == [("dana", "web")]


def test_a_personal_bearer_token_decides_and_the_shared_token_only_reads(site: Site) -> None:
    with site.outsider() as http:
        shared = {"Authorization": f"Bearer {READ_ONLY}"}
        assert http.get(f"/models/{HIGH}", headers=shared).status_code == 200
        assert decide(http, site, "", **shared).status_code == 403
        gustav = {"Authorization": f"Bearer {site.tokens.token('gustav')}"}
        assert "gustav" in http.get("/", headers=gustav).text
        assert decide(http, site, "", **gustav).status_code == 303
        dana = {"Authorization": f"Bearer {site.tokens.token('dana')}"}
        assert decide(http, site, "", **dana).status_code == 303
    assert site.rt.store.get_gate(site.gate.id).status == "approved"
    assert sorted(site.decisions()) == [("dana", "web"), ("gustav", "web")]


def test_reasons_are_required_server_side(site: Site) -> None:
    bearer = {"Authorization": f"Bearer {site.tokens.token('dana')}"}
    with site.outsider() as http:
        for blank in ("", "   "):
            answer = decide(http, site, "", reason=blank, **bearer)
            assert answer.status_code == 400 and "reason" in answer.text
    assert site.decisions() == []


def test_no_token_in_urls_and_no_open_redirect(site: Site) -> None:
    with site.outsider() as http:
        for path in (f"//evil.example/x?token={READ_ONLY}", f"/?token={READ_ONLY}"):
            answer = http.get(path)
            assert answer.status_code == 401 and "location" not in answer.headers
            assert "never accepted in a URL" in answer.text
        bearer = {"Authorization": f"Bearer {READ_ONLY}"}
        answer = http.get("//evil.example/x", headers=bearer)
        assert answer.status_code == 404 and "location" not in answer.headers
        login = http.post("/login?next=//evil.example/", data={"token": READ_ONLY})
        assert (login.status_code, login.headers["location"]) == (303, "/")


def test_login_sets_a_secure_httponly_samesite_session_bound_csrf(site: Site) -> None:
    dana = site.tokens.token("dana")
    with site.outsider() as first, site.outsider() as second:
        for http in (first, second):
            answer = http.post("/login", data={"token": dana})
            assert answer.status_code == 303
            cookie = answer.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
            assert dana.lower() not in cookie
            # httpx does not send Secure cookies over http; a browser on 127.0.0.1 does
            http.cookies.set("prodcontrol_session", answer.cookies["prodcontrol_session"])
        csrf_first = site.csrf(first)
        # one session's form token does not work in another session of the same person
        answer = decide(second, site, csrf_first)
        assert answer.status_code == 403 and "another session" in answer.text
        # and it expires
        site.rt.clock.advance(timedelta(hours=1, minutes=1))  # type: ignore[attr-defined]
        answer = decide(first, site, csrf_first)
        assert answer.status_code == 403 and "more than an hour old" in answer.text
        assert decide(first, site, site.csrf(first)).status_code == 303
    assert site.decisions() == [("dana", "web")]


def test_a_revoked_token_ends_its_sessions_and_its_bearer_use(site: Site) -> None:
    from prodcontrol.identity import service as identity

    dana = site.tokens.token("dana")
    with site.outsider() as http:
        login = http.post("/login", data={"token": dana})
        http.cookies.set("prodcontrol_session", login.cookies["prodcontrol_session"])
        assert http.get("/").status_code == 200
        identity.revoke(site.rt, dana.split("_")[1], by=site.tokens.admin())
        assert http.get("/").status_code == 401
        http.cookies.clear()
        assert http.get("/", headers={"Authorization": f"Bearer {dana}"}).status_code == 401


def test_malformed_credentials_are_401_never_500(site: Site) -> None:
    raw_headers: list[list[tuple[bytes, bytes]]] = [
        [(b"authorization", "Bearer dänä".encode())],
        [(b"authorization", b"Bearer \xff\xfe")],
        [(b"authorization", b"Basic ZGFuYTo=")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Bearer pct_zzzzzzzzzzzz_" + b"A" * 43)],
        [(b"cookie", "prodcontrol_session=é".encode())],
        [(b"cookie", b"prodcontrol_session=eyJhIjoxfQ.forged")],
    ]
    with site.outsider() as http:
        for headers in raw_headers:
            answer = http.get("/", headers=headers)
            assert answer.status_code == 401, headers
    with site.proxy() as http:
        answer = http.get("/", headers=[(HEADER.encode(), "dänä".encode())])
        assert answer.status_code == 401


def test_pages_and_refusals_cannot_be_framed(site: Site) -> None:
    with site.outsider() as http:
        for answer in (
            http.get("/"),
            http.get("/", headers={"Authorization": f"Bearer {READ_ONLY}"}),
            http.get("/login"),
        ):
            assert answer.headers["x-frame-options"] == "DENY"
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


def test_a_proxy_header_without_trusted_proxies_warns_at_start(
    tmp_path: Path, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from prodcontrol.web.app import create_app

    rt = make_runtime(tmp_path, sqlite_url, ManualClock(), web_auth_header=HEADER)
    with caplog.at_level("WARNING", logger="prodcontrol.web.app"):
        create_app(rt)
    assert "web_trusted_proxies is empty" in caplog.text and HEADER in caplog.text
