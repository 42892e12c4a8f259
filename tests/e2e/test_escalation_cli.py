"""``escalations list|ack|tick`` and ``outbox list|send`` through the CLI (no Slack token)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from identity_helpers import TokenBook
from prodcontrol.cli import app, output
from prodcontrol.cli.app import run
from prodcontrol.evidence.records import FindingIn, VerdictIn
from prodcontrol.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def cli_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PRODCONTROL_") and not name.startswith("PRODCONTROL_REQUIRE_"):
            monkeypatch.delenv(name)
    config = tmp_path / "prodcontrol.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\ninventory_dir = "{EXAMPLES}"\n')
    monkeypatch.setenv("PRODCONTROL_CONFIG", str(config))
    monkeypatch.setattr(output.console, "_width", 200)
    monkeypatch.setenv("PRODCONTROL_TOKEN", "")
    rt = Runtime.from_options()
    monkeypatch.setitem(BOOKS, tmp_path, TokenBook(rt))
    run = rt.store.start_run("credit-limit-regressor", "3", "medium", "cli")
    verdict = VerdictIn(
        control_id="dataset-drift",
        kind="drift",
        verdict="fail",
        value=0.42,
        warn=0.1,
        fail=0.3,
        direction="higher_is_worse",
        reason="0.42 is at or above fail threshold 0.3",
    )
    finding = FindingIn(control_id="dataset-drift", severity="high", blocking=True)
    rt.store.finish_run(run.id, "failed", [verdict], [], [finding])
    return tmp_path


BOOKS: dict[Path, TokenBook] = {}


def token_for(cli_state: Path, person: str) -> str:
    return BOOKS[cli_state].token(person)


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_tick_send_list_and_ack(cli_state: Path) -> None:
    assert json.loads(invoke("escalations", "tick", "--json"))["started"] == 1
    [row] = json.loads(invoke("escalations", "list", "--json"))
    assert (row["model"], row["status"], row["step"]) == ("credit-limit-regressor", "active", 1)

    printed = invoke("outbox", "send")
    assert "--- to @emeka" in printed and "control dataset-drift is FAIL" in printed
    assert "[Acknowledge]" in printed
    outbox_file = cli_state / "state" / "outbox.log"
    assert json.loads(outbox_file.read_text().splitlines()[0])["recipient"] == "@emeka"
    assert json.loads(invoke("outbox", "send", "--json"))["sent"] == 0  # nothing twice
    [sent] = json.loads(invoke("outbox", "list", "--json"))
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    assert json.loads(invoke("outbox", "list", "--dead", "--json")) == []

    os.environ["PRODCONTROL_TOKEN"] = token_for(cli_state, "emeka")
    done = json.loads(invoke("escalations", "ack", row["id"], "--as", "emeka", "--json"))
    assert (done["status"], done["acknowledged_by"]) == ("acknowledged", "emeka")


def test_ack_by_someone_without_a_stake_is_refused(cli_state: Path) -> None:
    invoke("escalations", "tick")
    [row] = json.loads(invoke("escalations", "list", "--json"))
    os.environ["PRODCONTROL_TOKEN"] = token_for(cli_state, "ivan")
    assert run(["escalations", "ack", row["id"], "--as", "ivan"]) == 2  # DecisionRefused
    [still] = json.loads(invoke("escalations", "list", "--json"))
    assert still["status"] == "active"
