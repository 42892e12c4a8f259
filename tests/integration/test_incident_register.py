"""The serious-incident register through the CLI, as people use it: personal tokens, the
tier's chain on the local Slack server, the ticker's reminders and deadline alarm, the control
in the loop, the report draft, and the people who may not act on it. SQLite and PostgreSQL.

The inventory is built here: ``triage-assistant`` on the high tier (chen model behaviour, dana
operating risk, amara business outcome; gustav is the model risk officer), whose tier runs the
incident-reporting control and ownership only.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from web_world import HEADER, OUTSIDER, PROXY, client, serving

from prodcontrol.adapters.slack import SlackNotifier
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.cli import evidence_cmds, incident_cmds, output, token_cmds
from prodcontrol.cli.app import run
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeRegistry, ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = "triage-assistant"
RISK = "#model-risk-high"


def catalog(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), target)
    tiers = target / "tiers.yaml"
    text = tiers.read_text()
    high = text.index("  high:")
    start = text.index("    controls: [", high)
    end = text.index("]\n", start) + 2
    wanted = "    controls: [serious-incident-reporting, ownership-readiness]\n"
    text = text[:start] + wanted + text[end:]
    overrides = text.index("    thresholds:\n", high)
    tiers.write_text(text[:overrides] + text[text.index("    sampling:", overrides) :])
    return target


def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inventory"
    target.mkdir()
    shutil.copy(EXAMPLES / "people.yaml", target / "people.yaml")
    model = {
        "name": MODEL,
        "description": "Ranks emergency calls for the dispatch desk.",
        "tier": "high",
        "stage": "production",
        "owners": {
            "business_outcome": "amara",
            "data_domain": "farah",
            "model_behaviour": "chen",
            "workflow_impact": "bruno",
            "operating_risk": "dana",
        },
        "last_review": "2026-10-20",
    }
    (target / "models.yaml").write_text(yaml.safe_dump({"models": [model]}, sort_keys=False))
    return target


@pytest.fixture
def world(
    tmp_path: Path,
    database_url: str,
    slack_server: LocalSlackServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Runtime:
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("PRODCONTROL_TOKEN", "")
    monkeypatch.setattr(output.console, "_width", 200)
    monkeypatch.setattr(output.err_console, "_width", 400)
    settings = Settings(
        state_dir=tmp_path / "state",
        inventory_dir=inventory(tmp_path),
        catalog_dir=catalog(tmp_path),
        database_url=database_url,
        organisation="Example Emergency Services Ltd",
        web_auth_header=HEADER,
        web_trusted_proxies=[f"{PROXY}/32"],
        slack_signing_secret=SecretStr("s" * 32),
    )
    registry = FakeRegistry()
    registry.add_version(MODEL, "4", tags={"prodcontrol.approved": "true"})
    registry.set_alias(MODEL, "champion", "4")
    clock = ManualClock()
    rt = Runtime(settings, clock, registry=registry)
    rt.__dict__["notifier"] = SlackNotifier(
        slack_server.token,
        people=rt.config.inventory.people,
        base_url=slack_server.base_url,
        store=rt.store,
        retries=2,
        backoff=0.01,
    )
    for module in (incident_cmds, token_cmds, evidence_cmds):
        monkeypatch.setattr(module, "runtime", lambda catalog=None, inventory=None: rt)
    return rt


def cli(capsys: pytest.CaptureFixture[str], *args: str, token: str = "") -> tuple[int, str]:
    os.environ["PRODCONTROL_TOKEN"] = token
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def tokens(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    code, out = cli(capsys, "tokens", "issue", "ivan", "--bootstrap", "--json")
    assert code == 0, out
    found = {"ivan": json.loads(out)["secret"]}
    for person in ("bruno", "dana", "chen"):
        code, out = cli(capsys, "tokens", "issue", person, "--json", token=found["ivan"])
        assert code == 0, out
        found[person] = json.loads(out)["secret"]
    return found


def drain(rt: Runtime) -> int:
    return OutboxSender(rt.store, rt.notifier, rt.clock, workers=1).drain().sent


def kinds(rt: Runtime) -> list[str]:
    return [e.kind for e in rt.store.events()]


def test_an_incident_from_open_to_close(
    world: Runtime,
    slack_server: LocalSlackServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    rt, clock = world, world.clock
    assert isinstance(clock, ManualClock)
    token = tokens(capsys)
    aware = clock.now() - timedelta(hours=6)

    # anyone in people.yaml reports what they saw: bruno (workflow impact) opens it
    code, out = cli(
        capsys,
        "incident", "open", MODEL,
        "--severity", "critical-infrastructure",
        "--summary", "Calls from one district were ranked last for 40 minutes.",
        "--aware-at", aware.isoformat(),
        "--affected", "about 30 callers",
        "--member-state", "DE",
        "--json",
        token=token["bruno"],
    )  # fmt: skip
    assert code == 0, out
    [row] = json.loads(out)
    incident = row["incident"]
    assert row["clause"] == "Art. 3(49)(b), Art. 73(3)" and row["version"] == "4"
    assert datetime.fromisoformat(row["deadline"]) == aware + timedelta(days=2)
    assert row["status"] == "open"

    # the tier's chain and the risk channel hear of it at once, with the deadline
    drain(rt)
    for dm in ("DU0CHEN003", "DU0DANA004", "DU0AMARA01", "DU0GUSTAV7"):
        assert "Art. 73(3)" in slack_server.messages(dm)[-1]["text"], dm
    assert "ranked last" in slack_server.messages(RISK)[-1]["text"]

    # reminders on the high tier's hour until the report is made
    before = len(slack_server.messages("DU0DANA004"))
    clock.advance(timedelta(hours=1, minutes=1))
    escalation.tick(rt)
    drain(rt)
    assert len(slack_server.messages("DU0DANA004")) == before + 1
    assert slack_server.messages("DU0DANA004")[-1]["text"].startswith("Reminder")

    # the attackers: bruno holds no escalation_outcome right, and cannot speak as dana
    code, out = cli(
        capsys, "incident", "report", incident, "--reference", "fake", token=token["bruno"]
    )
    assert code == 2 and "may not report" in out
    code, out = cli(
        capsys, "incident", "close", incident, "--dismiss", "--reason", "nothing happened",
        token=token["bruno"],
    )  # fmt: skip
    assert code == 2 and "bruno" in out
    code, out = cli(
        capsys, "incident", "report", incident, "--reference", "x", "--as", "dana",
        token=token["bruno"],
    )  # fmt: skip
    assert code == 2 and "only as themselves" in out
    code, out = cli(capsys, "incident", "close", incident, "--reason", "done", token=token["dana"])
    assert code == 2 and "never reported" in out
    chain = next(e for e in rt.store.list_escalations() if e.gate_id == incident)
    with pytest.raises(Exception, match="stops when the report is made"):
        escalation.acknowledge(rt, chain.id, "dana", "cli")
    assert kinds(rt).count("incident.refused") == 1  # bruno's report
    assert kinds(rt).count("decision_refused") == 2  # bruno's dismissal, dana's early close

    # the control in the loop: 42 of the 48 hours gone, no report: fails, high tier gates
    clock.set(aware + timedelta(hours=49))
    result = run_checks(rt, MODEL)
    verdict = {v.control: v for v in result.verdicts}["serious-incident-reporting"]
    assert verdict.verdict == "fail" and verdict.value == pytest.approx(49 / 48)
    assert result.gate_id is not None

    # Art. 73(6): no new version goes into service before the authority is informed
    from prodcontrol.control.lifecycle import lifecycle
    from prodcontrol.errors import DecisionRefused

    with pytest.raises(DecisionRefused, match=r"Art\. 73\(6\)"):
        lifecycle.request_promotion(
            rt, MODEL, "4", "production", requested_by="chen", reason="hotfix"
        )
    assert "promotion_refused" in kinds(rt)

    # past the deadline unreported: one alarm to the risk channel, however many ticks
    escalation.tick(rt)
    escalation.tick(rt)
    drain(rt)
    missed = [m for m in slack_server.messages(RISK) if "passed at" in m["text"]]
    assert len(missed) == 1 and kinds(rt).count("incident.deadline_missed") == 1

    # dana reports (initial), the reminders stop
    code, out = cli(
        capsys, "incident", "report", incident, "--kind", "initial",
        "--reference", "MSA-DE-2026-0042", "--causal-link", "reasonably-likely",
        "--corrective", "district weighting reverted; calls re-ranked by hand", "--json",
        token=token["dana"],
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)[0]["status"] == "reported"
    quiet = len(slack_server.messages("DU0DANA004"))
    clock.advance(timedelta(hours=3))
    escalation.tick(rt)
    drain(rt)
    assert len(slack_server.messages("DU0DANA004")) == quiet
    assert run_checks(rt, MODEL).verdicts[0].verdict == "pass"

    # the report draft carries what Art. 73 and the reporting template ask for
    draft = tmp_path / "draft.md"
    code, out = cli(capsys, "incident", "export", incident, "--out", str(draft))
    assert code == 0, out
    text = draft.read_text()
    for fact in (
        "Example Emergency Services Ltd",
        "triage-assistant",
        "Version in service: 4",
        "Art. 73(3)",
        "Art. 3(49)(b)",
        aware.strftime("%Y-%m-%d %H:%M UTC"),
        "about 30 callers",
        "DE",
        "reasonably-likely",
        "MSA-DE-2026-0042",
        "district weighting reverted",
        "Dana Fischer <dana.fischer@example.com>",
    ):
        assert fact in text, fact
    as_json = tmp_path / "draft.json"
    assert cli(capsys, "incident", "export", incident, "--out", str(as_json))[0] == 0
    facts = json.loads(as_json.read_text())
    assert facts["case"] == "critical-infrastructure" and facts["reports"][0]["by"] == "dana"

    # dana closes it with the reason; the chain ends; the list says it was reported late
    code, out = cli(
        capsys, "incident", "close", incident, "--reason", "root cause fixed, authority informed",
        token=token["dana"],
    )  # fmt: skip
    assert code == 0, out
    escalation.tick(rt)
    assert rt.store.get_escalation(chain.id).status == "resolved"
    code, out = cli(capsys, "incident", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["status"], listed["overdue"]) == ("closed", True)
    # the operating review of the month counts it: reported, but after the deadline
    from prodcontrol.control.reports import review_report

    review = review_report.build(rt.store, rt.config, aware.strftime("%Y-%m"), clock.now())
    [counted] = review.incidents
    assert (counted.id, counted.outcome) == (incident, "reported late")
    html = review_report.render_html(review)
    assert "Serious incidents (EU AI Act Art. 73)" in html and "reported late" in html
    assert review_report.to_json(review)["incidents"][0]["outcome"] == "reported late"
    # the framework view and the evidence pack carry the control, the incident and its clause
    code, out = cli(capsys, "evidence", "frameworks", "--framework", "eu-ai-act", "--json")
    art73 = {r["clause"]: r for r in json.loads(out)}["art-73"]
    assert "serious-incident-reporting" in art73["controls"] and art73["outcome"] == "fail"
    pack = tmp_path / "pack.zip"
    code, out = cli(capsys, "evidence", "export", "--out", str(pack), "--json")
    assert code == 0, out
    import zipfile

    with zipfile.ZipFile(pack) as archive:
        index = archive.read("index.html").decode()
        entries = archive.read("evidence.jsonl").decode()
    for text in ("serious-incident-reporting", "art-73", "incident"):
        assert text in index, text
    for text in ("incident.opened", "incident.reported", "MSA-DE-2026-0042", incident):
        assert text in entries, text
    for kind in ("incident.opened", "incident.reported", "incident.exported"):
        assert kind in kinds(rt)
    assert rt.store.verify().ok


def test_each_case_gets_the_articles_deadline(
    world: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tokens(capsys)
    now = world.clock.now()
    expected = {
        "death": 10,
        "critical-infrastructure": 2,
        "widespread-infringement": 2,
        "health": 15,
        "fundamental-rights": 15,
        "property-environment": 15,
    }
    for case, days in expected.items():
        code, out = cli(
            capsys, "incident", "open", MODEL, "--severity", case, "--summary", case, "--json",
            token=token["chen"],
        )  # fmt: skip
        assert code == 0, out
        deadline = datetime.fromisoformat(json.loads(out)[0]["deadline"])
        assert deadline == now + timedelta(days=days), case
    code, out = cli(
        capsys, "incident", "open", MODEL, "--severity", "bad", "--summary", "x",
        token=token["chen"],
    )  # fmt: skip
    assert code == 2 and "death, critical-infrastructure" in out
    code, out = cli(capsys, "incident", "open", MODEL, "--severity", "death", "--summary", "x")
    assert code == 2 and "PRODCONTROL_TOKEN" in out


def test_the_model_page_shows_it_and_the_web_decides_only_by_the_rules(
    world: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    from prodcontrol.control.lifecycle import incidents

    token = tokens(capsys)
    gate = incidents.open_incident(
        world,
        MODEL,
        person="bruno",
        case="health",
        summary="A caller with chest pain was ranked routine.",
    )
    form = {"decision": "reject", "reason": "not serious, I say"}
    with serving(world) as url:
        with client(url, PROXY) as http:
            page = http.get(f"/models/{MODEL}", headers={HEADER: "dana"})
            assert page.status_code == 200
            for text in (gate.id, "chest pain", "Art. 3(49)(a), Art. 73(2)", "open"):
                assert text in page.text, text
        with client(url, OUTSIDER) as http:  # the attacker forges the proxy's header
            forged = http.post(f"/gates/{gate.id}/decide", headers={HEADER: "dana"}, data=form)
            assert forged.status_code == 401
            bruno = {"Authorization": f"Bearer {token['bruno']}"}
            refused = http.post(f"/gates/{gate.id}/decide", headers=bruno, data=form)
            assert refused.status_code == 403 and "bruno" in refused.text
            dana = {"Authorization": f"Bearer {token['dana']}"}
            early = {"decision": "approve", "reason": "all fine"}
            closing = http.post(f"/gates/{gate.id}/decide", headers=dana, data=early)
            assert closing.status_code == 403 and "never reported" in closing.text
    assert world.store.decisions_for(gate.id) == []
    assert world.store.get_gate(gate.id).status == "pending"
    assert kinds(world).count("decision_refused") == 2


def test_an_incident_opens_while_mlflow_is_down(
    world: Runtime, slack_server: LocalSlackServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reporting a harm never waits for the registry: the version is recorded as unknown."""
    token = tokens(capsys)
    registry = world.registry
    assert isinstance(registry, FakeRegistry)
    registry.reachable = False
    code, out = cli(
        capsys, "incident", "open", MODEL, "--severity", "death", "--summary", "x", "--json",
        token=token["chen"],
    )  # fmt: skip
    assert code == 0, out
    assert json.loads(out)[0]["version"] == "unknown"
    drain(world)
    assert "Art. 73(4)" in slack_server.messages(RISK)[-1]["text"]
