"""Every example DAG imports cleanly; the factory builds one DAG per tier with the tier's cron."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from airflow.dag_processing.dagbag import DagBag
from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config

import prodcontrol_airflow
from conftest import EXAMPLES


@pytest.fixture(scope="module")
def bag() -> DagBag:
    return DagBag(dag_folder=str(EXAMPLES))


def test_every_example_dag_imports_without_errors(bag: DagBag) -> None:
    assert bag.import_errors == {}
    tiers = load_config(default_catalog_dir(), EXAMPLES.parents[2] / "examples").catalog.tiers
    expected = {f"prodcontrol_tier_{t}" for t in tiers}
    expected |= {"prodcontrol_escalations", "prodcontrol_manual_action"}
    assert expected <= set(bag.dag_ids)


def test_tier_dags_follow_tiers_yaml(bag: DagBag) -> None:
    tiers = load_config(default_catalog_dir(), EXAMPLES.parents[2] / "examples").catalog.tiers
    for name, policy in tiers.items():
        dag = bag.dags[f"prodcontrol_tier_{name}"]
        assert dag is not None
        assert dag.timetable.summary == policy.schedule
        assert {t.task_id for t in dag.tasks} == {"models", "model.check", "model.gate"}
        group = dag.task_group_dict["model"]
        assert type(group).__name__ == "MappedTaskGroup"
        assert dag.get_task("model.gate").upstream_task_ids == {"model.check"}
        assert dag.get_task("model.check").on_failure_callback


def test_provider_is_registered_through_its_entry_point() -> None:
    found = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("prodcontrol_airflow")
    ]
    assert len(found) == 1
    info = found[0].load()()
    assert info == prodcontrol_airflow.get_provider_info()
    assert info["package-name"] == "prodcontrol-airflow"
    assert {c["connection-type"] for c in info["connection-types"]} == {
        "prodcontrol_mlflow",
        "prodcontrol_slack",
    }
