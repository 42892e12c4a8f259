"""The Airflow user who answered a HITL task maps to one person, or decides nothing."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

from prodcontrol_airflow.identity import NotAuthenticated, person_for_user

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_an_airflow_user_maps_to_a_person_and_a_stranger_to_no_one(tmp_path: Path) -> None:
    rt = Runtime(Settings(state_dir=tmp_path, inventory_dir=EXAMPLES))
    assert person_for_user(rt, {"id": "7", "name": "dana"}).person == "dana"
    user = SimpleNamespace(username="gl", email="gustav.lind@example.com")
    assert person_for_user(rt, user).person == "gustav"
    with pytest.raises(NotAuthenticated):
        person_for_user(rt, {"id": "1", "name": "admin"})
