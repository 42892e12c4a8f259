"""One human, one vote: people.yaml refuses two people with one e-mail or one Slack id."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _inventory(tmp_path: Path, extra_person: str) -> Path:
    inventory = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples", inventory)
    people = inventory / "people.yaml"
    people.write_text(people.read_text() + extra_person)
    return inventory


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_a_second_person_with_dana_s_email_in_other_case_is_refused_with_both_lines(
    tmp_path: Path,
) -> None:
    # a newcomer copies dana's line to add a colleague and forgets to change the e-mail
    inventory = _inventory(
        tmp_path,
        "  - {id: dana2, name: Dana Two, email: Dana.Fischer@example.com, slack_id: U0DANA2X9, "
        "roles: [model_risk_officer]}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(default_catalog_dir(), inventory)
    people = inventory / "people.yaml"
    [problem] = [p for p in caught.value.problems if p.field.endswith(".email")]
    assert problem.line == _line(people, "id: dana2")
    assert f"{people}:{_line(people, 'id: dana,')}" in problem.message
    assert "people[dana]" in problem.message and "one vote" in problem.message


def test_a_second_person_with_gustav_s_slack_id_is_refused_with_both_lines(
    tmp_path: Path,
) -> None:
    inventory = _inventory(
        tmp_path,
        "  - {id: mallory, name: Mallory, email: mallory@example.com, slack_id: U0GUSTAV7, "
        "roles: [model_risk_officer]}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(default_catalog_dir(), inventory)
    people = inventory / "people.yaml"
    [problem] = [p for p in caught.value.problems if p.field.endswith(".slack_id")]
    assert problem.field == "people[mallory].slack_id"
    assert problem.line == _line(people, "id: mallory")
    assert f"{people}:{_line(people, 'id: gustav')}" in problem.message
