"""``gates``, ``waivers``, ``rollback``, ``suspend``, ``promote``, ``retire`` end to end.

The commands run through Typer (CliRunner, and ``run()`` for exit codes) on the example
inventory with a SQLite evidence store in a private state dir; the registry is FakeRegistry
(the real MLflow server is in tests/integration/test_actions_mlflow.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from identity_helpers import TokenBook
from prodcontrol.cli import action_cmds, app, gate_cmds, output
from prodcontrol.cli.app import run
from prodcontrol.evidence import Finding, FindingIn, VerdictIn
from prodcontrol.runtime import Runtime
from prodcontrol.settings import load_settings
from prodcontrol.testing import FakeRegistry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HIGH, MEDIUM = "fraud-detector", "credit-limit-regressor"


@pytest.fixture
def registry() -> FakeRegistry:
    registry = FakeRegistry()
    for model, count in ((HIGH, 3), (MEDIUM, 3)):
        for number in range(1, count + 1):
            tags = {"prodcontrol.approved": "true"} if number < count else {}
            registry.add_version(model, str(number), tags=tags)
        registry.set_alias(model, "champion", "2" if model == MEDIUM else "3")
    registry.add_version("pricing-experiment", "1")
    return registry


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, registry: FakeRegistry) -> Runtime:
    """Every command gets a fresh Runtime on the same state dir and the same registry."""
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{EXAMPLES}"\n')
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setattr(output.console, "_width", 200)
    monkeypatch.setattr(output.err_console, "_width", 300)  # refusals on one line

    first = Runtime(load_settings(), registry=registry)
    shared = {"config": first.config, "store": first.store, "registry": registry}

    def runtime(catalog: Path | None = None, inventory: Path | None = None) -> Runtime:
        # loading the catalog and checking the schema once keeps each command fast
        settings = load_settings(catalog_dir=catalog, inventory_dir=inventory)
        return Runtime(settings, **shared)

    for module in (gate_cmds, action_cmds):
        monkeypatch.setattr(module, "runtime", runtime)
    monkeypatch.setenv("PRODCONTROL_TOKEN", "")
    monkeypatch.setitem(BOOKS, "current", TokenBook(first))
    return first


BOOKS: dict[str, TokenBook] = {}


def _as_token_holder(args: tuple[str, ...]) -> list[str]:
    """``--as PERSON`` in a test means: run with PERSON's own PRODCONTROL_TOKEN."""
    if "--as" in args:
        person = args[args.index("--as") + 1]
        os.environ["PRODCONTROL_TOKEN"] = BOOKS["current"].token(person)
    return list(args)


def finding(rt: Runtime, model: str, version: str, verdict: str = "fail") -> Finding:
    run_ = rt.store.start_run(model, version, rt.config.model(model).tier, "test")
    rt.store.finish_run(
        run_.id,
        "failed" if verdict != "pass" else "succeeded",
        verdicts=[
            VerdictIn(
                control_id="dataset-drift",
                kind="drift",
                verdict=verdict,  # type: ignore[arg-type]
                value=0.5,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason="drift",
            )
        ],
        artifacts=[],
        findings=[]
        if verdict == "pass"
        else [FindingIn(control_id="dataset-drift", severity="high", blocking=True)],
    )
    return next((f for f in rt.store.list_findings(model=model) if f.run_id == run_.id), None)  # type: ignore[return-value]


APPROVE = ("gates", "approve")


def ok(*args: str) -> str:
    result = CliRunner().invoke(app, _as_token_holder(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert run(_as_token_holder(args)) == 2
    return capsys.readouterr().err


def test_gates_list_show_approve_reject(
    rt: Runtime, registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    from prodcontrol.control.gates import decisions

    assert json.loads(ok("gates", "list", "--json")) == []
    assert "no pending gates" in ok("gates", "list")
    gate = decisions.open_finding_gate(rt, finding(rt, HIGH, "3"), "high")
    [row] = json.loads(ok("gates", "list", "--json"))
    assert (row["gate"], row["approvals"], row["right"]) == (gate.id, "0/2", "escalation_outcome")
    listed = ok("gates", "list", "--model", HIGH)
    assert gate.id[:8] in listed and gate.id not in listed  # a short id at 80 columns
    assert max(len(line) for line in listed.splitlines()) <= 80
    assert gate.id in ok("gates", "list", "--model", HIGH, "--wide")

    assert "separation of duties" in refused(
        capsys, *APPROVE, gate.id, "--as", "chen", "--reason", "ok"
    )
    assert "give --reason" in refused(capsys, *APPROVE, gate.id, "--reason", " ")
    out = ok("gates", "approve", gate.id[:8], "--as", "gustav", "--reason", "seasonal")
    assert "stays pending" in out and "Could still approve: dana" in out
    assert "already decided" in refused(
        capsys, *APPROVE, gate.id, "--as", "gustav", "--reason", "ok"
    )
    err = refused(capsys, *APPROVE, gate.id, "--as", "amara", "--reason", "ok")
    assert "does not hold" in err and "could decide: dana" in err

    shown = json.loads(ok("gates", "show", gate.id[:6], "--json"))
    assert shown["could_approve"] == ["dana"] and shown["could_reject"] == ["chen", "dana"]
    assert shown["decisions"][0].startswith("gustav approve via cli")
    assert shown["opened_for"] == "chen" and "requested_by" not in shown  # chen asked nothing

    out = ok("gates", "reject", gate.id, "--as", "dana", "--reason", "drift is real")
    assert "rejected" in out and "rollback applied" in out
    assert registry.aliases[HIGH]["champion"] == "2"
    assert "already rejected" in refused(
        capsys, *APPROVE, gate.id, "--as", "chen", "--reason", "ok"
    )
    [closed] = json.loads(ok("gates", "list", "--status", "all", "--json"))
    assert closed["status"] == "rejected"
    assert refused(capsys, "gates", "list", "--status", "nope")
    assert run(["gates", "show", "no-such-gate"]) == 2
    assert "no gate with id 'no-such-gate'" in capsys.readouterr().err
    assert run(["gates", "show", gate.id[:2]]) == 2
    assert "too short" in " ".join(capsys.readouterr().err.split())


def test_waivers_grant_list_revoke(rt: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    found = finding(rt, MEDIUM, "2")
    err = refused(
        capsys, "waivers", "grant", found.id, "--as", "dana", "--reason", "r", "--days", "40"
    )
    assert "waiver_max" in err
    assert "exception" in refused(
        capsys, "waivers", "grant", found.id, "--as", "emeka", "--reason", "r", "--days", "5"
    )
    assert "exactly one" in refused(
        capsys, "waivers", "grant", found.id, "--as", "dana", "--reason", "r"
    )
    granted = json.loads(
        ok(
            "waivers",
            "grant",
            found.id,
            "--as",
            "dana",
            "--reason",
            "seasonal",
            "--days",
            "5",
            "--json",
        )
    )
    assert (granted["state"], granted["control"]) == ("EXPIRING", "dataset-drift")
    [listed] = json.loads(ok("waivers", "list", "--json"))
    assert listed["waiver"] == granted["waiver"] and listed["days_left"] == 5.0
    assert "EXPIRING" in ok("waivers", "list")
    ok("waivers", "revoke", granted["waiver"], "--as", "dana", "--reason", "drift is real")
    assert json.loads(ok("waivers", "list", "--json")) == []
    assert [w["state"] for w in json.loads(ok("waivers", "list", "--all", "--json"))] == ["revoked"]
    assert rt.store.get_finding(found.id).status == "open"


def test_suspend_and_rollback_by_hand(
    rt: Runtime, registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "shutdown right" in refused(
        capsys, "suspend", HIGH, "--as", "amara", "--reason", "panic"
    )
    rolled = json.loads(ok("rollback", HIGH, "--as", "dana", "--reason", "bad", "--json"))
    assert (rolled["status"], rolled["to_version"]) == ("applied", "2")
    out = ok("suspend", HIGH, "--as", "ivan", "--reason", "incident 42")
    assert "applied" in out and "prodcontrol.suspended=true" in out
    assert "champion" not in registry.aliases[HIGH]
    again = json.loads(ok("suspend", HIGH, "--as", "ivan", "--reason", "again", "--json"))
    assert again["status"] == "skipped"


def test_promote_and_retire_through_gates(
    rt: Runtime, registry: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(
        capsys,
        "promote",
        "pricing-experiment",
        "1",
        "--to",
        "production",
        "--as",
        "emeka",
        "--reason",
        "ready",
    )
    assert "no owner for" in err
    assert "pilot or production" in refused(
        capsys, "promote", MEDIUM, "3", "--to", "staging", "--as", "emeka", "--reason", "r"
    )
    finding(rt, MEDIUM, "3", verdict="pass")
    opened = json.loads(
        ok("promote", MEDIUM, "3", "--to", "pilot", "--as", "emeka", "--reason", "new", "--json")
    )
    assert opened["kind"] == "promotion" and opened["could_approve"] == ["dana"]
    # a newcomer forgets --reason: refused (exit 2), recorded, and nothing moves
    err = refused(capsys, *APPROVE, opened["gate"], "--as", "dana")
    assert "--reason" in err
    assert registry.aliases[MEDIUM]["champion"] == "2"
    assert "separation" not in ok(*APPROVE, opened["gate"], "--as", "dana", "--reason", "ok")
    assert registry.aliases[MEDIUM]["champion"] == "3"

    gate = json.loads(ok("retire", MEDIUM, "--as", "emeka", "--reason", "replaced", "--json"))
    out = ok("gates", "approve", gate["gate"], "--as", "dana", "--reason", "agreed")
    assert "retire applied" in out and registry.aliases[MEDIUM] == {}
    assert "already retired" in refused(
        capsys, "retire", MEDIUM, "--as", "emeka", "--reason", "again"
    )
