"""Every CLI decision is made by the person of PRODCONTROL_TOKEN: the attacks of issue #15.

The commands run as a user types them (``run([...])`` for exit codes, the real SQLite store in a
private state dir, the example inventory); the registry is FakeRegistry.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from prodcontrol.cli import action_cmds, gate_cmds, output, token_cmds
from prodcontrol.cli.app import run
from prodcontrol.control.gates import decisions
from prodcontrol.evidence import Finding, FindingIn, VerdictIn
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings
from prodcontrol.testing import FakeRegistry, ManualClock

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HIGH = "fraud-detector"  # high tier: two_person, separation of duties; chen asked (model_behaviour)


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{EXAMPLES}"\n')
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setenv("PRODCONTROL_TOKEN", "")
    monkeypatch.setattr(output.console, "_width", 200)
    monkeypatch.setattr(output.err_console, "_width", 400)
    registry = FakeRegistry()
    for number in (1, 2, 3):
        registry.add_version(HIGH, str(number), tags={"prodcontrol.approved": "true"})
    registry.set_alias(HIGH, "champion", "3")
    clock = ManualClock()
    first = Runtime(load_settings(), clock, registry=registry)
    shared = {"config": first.config, "store": first.store, "registry": registry}

    def runtime(catalog: Path | None = None, inventory: Path | None = None) -> Runtime:
        return Runtime(load_settings(catalog_dir=catalog, inventory_dir=inventory), clock, **shared)

    for module in (gate_cmds, action_cmds, token_cmds):
        monkeypatch.setattr(module, "runtime", runtime)
    return first


def cli(
    capsys: pytest.CaptureFixture[str], *args: str, token: str | None = None
) -> tuple[int, str]:
    os.environ["PRODCONTROL_TOKEN"] = token or ""
    capsys.readouterr()
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def issue(capsys: pytest.CaptureFixture[str], person: str, by: str | None) -> str:
    args = ["tokens", "issue", person, "--json"] + ([] if by else ["--bootstrap"])
    code, out = cli(capsys, *args, token=by)
    assert code == 0, out
    return str(json.loads(out)["secret"])


def high_gate(rt: Runtime) -> Gate:
    run_ = rt.store.start_run(HIGH, "3", "high", "test")
    verdict = VerdictIn(
        control_id="dataset-drift",
        kind="drift",
        verdict="fail",
        value=0.5,
        warn=0.1,
        fail=0.3,
        direction="higher_is_worse",
        reason="drift",
    )
    finding = FindingIn(control_id="dataset-drift", severity="high", blocking=True)
    rt.store.finish_run(run_.id, "failed", [verdict], [], [finding])
    found: Finding = next(f for f in rt.store.list_findings(model=HIGH) if f.run_id == run_.id)
    return decisions.open_finding_gate(rt, found, "high")


def test_without_a_token_a_decision_exits_2_and_says_how_to_get_one(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = high_gate(rt)
    code, out = cli(capsys, "gates", "approve", gate.id, "--as", "dana", "--reason", "ok")
    assert code == 2
    assert "PRODCONTROL_TOKEN" in out and "prodcontrol tokens issue" in out
    assert rt.store.decisions_for(gate.id) == []


def test_one_shell_cannot_close_a_two_person_gate_with_two_as_flags(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """The attack: `--as dana` then `--as gustav` from one shell closed a two-person gate."""
    gate = high_gate(rt)
    admin = issue(capsys, "ivan", None)
    dana = issue(capsys, "dana", admin)
    code, out = cli(
        capsys, "gates", "approve", gate.id, "--as", "dana", "--reason", "ok", token=dana
    )
    assert code == 0, out
    code, out = cli(
        capsys, "gates", "approve", gate.id, "--as", "gustav", "--reason", "ok", token=dana
    )
    assert code == 2 and "dana's token" in out
    # without --as the token speaks for dana, who already decided
    code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "again", token=dana)
    assert code == 2 and "already decided" in out
    assert rt.store.get_gate(gate.id).status == "pending"
    assert [d.person for d in rt.store.decisions_for(gate.id)] == ["dana"]
    # a second, real person closes it with their own token
    gustav = issue(capsys, "gustav", admin)
    code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "agreed", token=gustav)
    assert code == 0 and rt.store.get_gate(gate.id).status == "approved"
    credentials = [
        e.payload["credential"]
        for e in rt.store.events()
        if e.kind == "identity.decision_credential"
    ]
    assert len(set(credentials)) == 2 and all(c.startswith("token:") for c in credentials)


def test_issuing_needs_an_mlops_admin_and_bootstrap_works_once(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "tokens", "issue", "dana", "--bootstrap")
    assert code == 2 and "mlops_admin" in out  # the first token goes to an admin
    code, out = cli(capsys, "tokens", "issue", "dana")
    assert code == 2 and "PRODCONTROL_TOKEN" in out
    admin = issue(capsys, "ivan", None)
    code, out = cli(capsys, "tokens", "issue", "ivan", "--bootstrap")
    assert code == 2 and "only issues the very first token" in out
    dana = issue(capsys, "dana", admin)
    code, out = cli(capsys, "tokens", "issue", "gustav", token=dana)
    assert code == 2 and "does not hold the mlops_admin role" in out
    code, out = cli(capsys, "tokens", "issue", "nobody", token=admin)
    assert code == 2 and "unknown person" in out


def test_tokens_are_stored_hashed_and_listed_without_secrets(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = issue(capsys, "ivan", None)
    dana = issue(capsys, "dana", admin)
    engine = create_engine(rt.settings.resolved_database_url)
    with engine.connect() as conn:
        rows = [
            " ".join(map(str, r)) for r in conn.execute(text("SELECT * FROM pc_personal_tokens"))
        ]
        events = [r[0] for r in conn.execute(text("SELECT payload FROM pc_events"))]
    engine.dispose()
    secret = dana.split("_", 2)[2]
    assert len(rows) == 2 and not any(secret in r for r in rows + events)
    code, out = cli(capsys, "tokens", "list", "--json", token=admin)
    listed = json.loads(out)
    assert code == 0 and {t["person"] for t in listed} == {"ivan", "dana"}
    assert secret not in out
    code, out = cli(capsys, "tokens", "list", "--json", token=dana)
    assert [t["person"] for t in json.loads(out)] == ["dana"]  # not an admin: only their own


def test_a_revoked_an_expired_and_a_malformed_token_all_exit_2(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = high_gate(rt)
    admin = issue(capsys, "ivan", None)
    dana = issue(capsys, "dana", admin)
    dana_id = dana.split("_")[1]
    code, out = cli(capsys, "tokens", "revoke", dana_id, token=admin)
    assert code == 0
    code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "r", token=dana)
    assert code == 2 and "revoked" in out

    gustav = issue(capsys, "gustav", admin)
    rt.clock.advance(timedelta(days=91))  # type: ignore[attr-defined]
    code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "r", token=gustav)
    assert code == 2 and "expired" in out

    for forged in ("dana", "pct_000000000000_" + "A" * 43, "pct_ünïcödé", dana[:-1] + "x"):
        code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "r", token=forged)
        assert code == 2, forged
        assert "Traceback" not in out
    assert rt.store.decisions_for(gate.id) == []


def test_break_glass_is_recorded_escalated_and_one_operator_is_one_vote(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = high_gate(rt)
    code, out = cli(capsys, "gates", "approve", gate.id, "--break-glass", "--as", "dana")
    assert code == 2 and "--reason" in out  # no reason, no break-glass
    code, out = cli(
        capsys,
        "gates",
        "approve",
        gate.id,
        "--break-glass",
        "--as",
        "dana",
        "--reason",
        "token service down during incident 7",
    )
    assert code == 0, out
    [event] = [e for e in rt.store.events() if e.kind == "identity.break_glass"]
    assert event.payload["person"] == "dana" and "incident 7" in event.payload["reason"]
    [note] = [n for n in rt.store.list_notifications() if n.payload.get("kind") == "break_glass"]
    assert note.recipient == rt.config.tier(rt.config.model(HIGH)).risk_channel
    assert "BREAK-GLASS" in str(note.payload["text"])
    # the same operator cannot break glass again as a second person on the same gate
    code, out = cli(
        capsys, "gates", "approve", gate.id, "--break-glass", "--as", "gustav", "--reason", "me too"
    )
    assert code == 2 and "one credential is one vote" in out
    assert rt.store.get_gate(gate.id).status == "pending"


def test_a_token_holder_cannot_add_a_second_vote_by_breaking_glass(
    rt: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = high_gate(rt)
    dana = issue(capsys, "dana", issue(capsys, "ivan", None))
    code, out = cli(capsys, "gates", "approve", gate.id, "--reason", "ok", token=dana)
    assert code == 0, out
    code, out = cli(
        capsys, "gates", "approve", gate.id, "--break-glass", "--as", "gustav", "--reason", "urgent"
    )
    assert code == 2 and "one credential is one vote" in out
    assert rt.store.get_gate(gate.id).status == "pending"
