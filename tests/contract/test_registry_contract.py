"""The MetricSource + ModelRegistry contract: MlflowAdapter (real server) and FakeRegistry agree.

Each case runs twice: against ``FakeRegistry`` and against ``MlflowAdapter`` on the session's
real ``mlflow server``. A small builder hides the one thing that differs, how a version with a
run and metrics comes into being.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from prodcontrol.adapters.mlflow import MlflowAdapter
from prodcontrol.errors import UnreachableError, UsageError
from prodcontrol.ports import (
    ControlRunSummary,
    MetricSource,
    ModelRegistry,
    ModelVersionRef,
    VerdictSummary,
)
from prodcontrol.testing import FakeRegistry

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@dataclass
class World:
    """A registry plus the means to give it versions and metric history."""

    registry: Any
    kind: str
    uri: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def add_version(
        self, model: str, metrics: dict[str, float], tags: dict[str, str] | None = None
    ) -> ModelVersionRef:
        if self.kind == "fake":
            number = self.counts[model] = self.counts.get(model, 0) + 1
            return self.registry.add_version(model, str(number), metrics, tags)  # type: ignore[no-any-return]
        client = self.registry.client
        if not client.search_registered_models(filter_string=f"name = '{model}'"):
            client.create_registered_model(model)
        experiment = client.get_experiment_by_name("contract") or client.get_experiment(
            client.create_experiment("contract")
        )
        run = client.create_run(experiment.experiment_id)
        for key, value in metrics.items():
            client.log_metric(run.info.run_id, key, value, timestamp=int(T0.timestamp() * 1000))
        version = client.create_model_version(
            model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id, tags=tags
        )
        return self.registry.get_version(model, str(version.version))  # type: ignore[no-any-return]

    def log_history(self, ref: ModelVersionRef, key: str, values: list[float]) -> None:
        from prodcontrol.ports import MetricPoint

        assert ref.run_id is not None
        if self.kind == "fake":
            self.registry.history[(ref.run_id, key)] = [
                MetricPoint(key=key, value=v, step=i, at=T0) for i, v in enumerate(values)
            ]
            return
        for step, value in enumerate(values):
            self.registry.client.log_metric(
                ref.run_id, key, value, timestamp=int(T0.timestamp() * 1000) + step, step=step
            )


@pytest.fixture(params=["fake", "mlflow"])
def world(request: pytest.FixtureRequest) -> World:
    if request.param == "fake":
        return World(FakeRegistry(), "fake")
    uri = request.getfixturevalue("mlflow_uri")
    return World(MlflowAdapter(uri), "mlflow", uri)


def name() -> str:
    return f"contract-{uuid.uuid4().hex[:10]}"


def test_both_implement_the_ports(world: World) -> None:
    assert isinstance(world.registry, MetricSource)
    assert isinstance(world.registry, ModelRegistry)


def test_alias_resolves_to_version_run_and_tags(world: World) -> None:
    model = name()
    world.add_version(model, {"auc": 0.7})
    second = world.add_version(model, {"auc": 0.8}, {"team": "risk"})
    world.registry.set_alias(model, "champion", second.version)
    ref = world.registry.resolve_alias(model, "champion")
    assert (ref.model, ref.version) == (model, "2")
    assert ref.run_id == second.run_id and ref.run_id
    assert ref.aliases == ["champion"]
    assert ref.tags["team"] == "risk"


def test_alias_pointing_nowhere_is_a_usage_error(world: World) -> None:
    model = name()
    world.add_version(model, {"auc": 0.7})
    with pytest.raises(UsageError, match="champion"):
        world.registry.resolve_alias(model, "champion")
    with pytest.raises(UsageError):
        world.registry.resolve_alias(name(), "champion")


def test_list_versions_with_aliases(world: World) -> None:
    model = name()
    for value in (0.6, 0.7, 0.8):
        world.add_version(model, {"auc": value})
    world.registry.set_alias(model, "champion", "2")
    world.registry.set_alias(model, "challenger", "3")
    versions = world.registry.list_versions(model)
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert [v.aliases for v in versions] == [[], ["champion"], ["challenger"]]
    assert world.registry.list_versions(name()) == []


def test_run_metrics_and_history(world: World) -> None:
    model = name()
    ref = world.add_version(model, {"auc": 0.8, "loss": 0.3})
    assert ref.run_id is not None
    assert world.registry.run_metrics(ref.run_id) == pytest.approx({"auc": 0.8, "loss": 0.3})
    world.log_history(ref, "kpi", [1.0, 2.0, 3.0])
    history = world.registry.metric_history(ref.run_id, "kpi")
    assert [(p.step, p.value) for p in history] == [(0, 1.0), (1, 2.0), (2, 3.0)]
    assert world.registry.metric_history(ref.run_id, "never-logged") == []


def test_baseline_is_the_newest_tagged_version_with_the_metric(world: World) -> None:
    model = name()
    world.add_version(model, {"auc": 0.70}, {"prodcontrol.approved": "true"})
    world.add_version(model, {"auc": 0.80}, {"prodcontrol.approved": "true"})
    world.add_version(model, {"auc": 0.90})
    world.add_version(model, {"loss": 0.1}, {"prodcontrol.approved": "true"})
    baseline = world.registry.baseline(model, "auc", "approved_version", "prodcontrol.approved")
    assert (baseline.version, baseline.metrics["auc"]) == ("2", pytest.approx(0.80))
    with pytest.raises(UsageError, match="recall"):
        world.registry.baseline(model, "recall", "approved_version", "prodcontrol.approved")


def test_tags_merge_and_alias_deletion(world: World) -> None:
    model = name()
    ref = world.add_version(model, {"auc": 0.8}, {"a": "1"})
    world.registry.set_alias(model, "champion", ref.version)
    world.registry.set_version_tags(model, ref.version, {"b": "2"})
    world.registry.delete_alias(model, "champion")
    world.registry.delete_alias(model, "champion")  # already gone: no error
    with pytest.raises(UsageError):
        world.registry.resolve_alias(model, "champion")
    (version,) = world.registry.list_versions(model)
    assert {"a": "1", "b": "2"}.items() <= version.tags.items()


def test_record_control_run_tags_the_version(world: World) -> None:
    model = name()
    ref = world.add_version(model, {"auc": 0.8})
    summary = ControlRunSummary(
        run_id=str(uuid.uuid4()),
        model=model,
        version=ref.version,
        tier="high",
        trigger="test",
        status="failed",
        verdict="fail",
        started_at=T0,
        finished_at=T0,
        verdicts=[VerdictSummary(control_id="dataset-drift", verdict="fail", value=0.7, fail=0.3)],
    )
    recorded = world.registry.record_control_run(summary)
    assert isinstance(recorded, str) and recorded
    (version,) = world.registry.list_versions(model)
    assert version.tags["prodcontrol.last_verdict"] == "fail"
    assert version.tags["prodcontrol.last_run_id"] == summary.run_id
    assert datetime.fromisoformat(version.tags["prodcontrol.last_run_at"]) == T0


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_unreachable_registry_raises_unreachable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")  # keep the retries, not sleeps
    if world.kind == "fake":
        world.registry.reachable = False
        registry = world.registry
    else:
        registry = MlflowAdapter(f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(UnreachableError) as caught:
        registry.resolve_alias("any-model", "champion")
    assert caught.value.system == "MLflow"
    with pytest.raises(UnreachableError):
        registry.set_alias("any-model", "champion", "1")
