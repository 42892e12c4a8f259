"""The Airflow user who answered maps to exactly one person, by exact id or e-mail (DESIGN §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prodcontrol.identity.service import NotAuthenticated, airflow_actor
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rt(tmp_path: Path) -> Runtime:
    return Runtime(Settings(state_dir=tmp_path, inventory_dir=ROOT / "examples"))


def test_username_or_email_maps_to_the_person(rt: Runtime) -> None:
    assert airflow_actor(rt, "dana").person == "dana"
    assert airflow_actor(rt, "dana.fischer@example.com").person == "dana"
    actor = airflow_actor(rt, "dfischer", "dana.fischer@example.com")
    assert (actor.person, actor.credential, actor.via) == ("dana", "airflow:dfischer", "airflow")


@pytest.mark.parametrize(
    ("username", "email"),
    [
        ("admin", None),  # Airflow's default admin is nobody in people.yaml
        ("DANA", None),
        ("U0DANA004", None),  # a Slack id is not an Airflow identity
        ("dana", "gustav.lind@example.com"),  # two different people: refuse, do not guess
        (None, None),
    ],
)
def test_no_match_or_two_people_decide_nothing(
    rt: Runtime, username: str | None, email: str | None
) -> None:
    with pytest.raises(NotAuthenticated, match=r"people\.yaml"):
        airflow_actor(rt, username, email)
