"""The tier control flow and the fleet sweep under Prefect's test harness, against fakes.

Every test shares the session's harness; flows here are small (two controls per model).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect_world import build_runtime, fleet_inventory, small_catalog

from prodcontrol.errors import UnreachableError
from prodcontrol.runtime import Runtime
from prodcontrol.testing import FakeDatasetSource, FakeRegistry

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, Path]:
    catalog = small_catalog(tmp_path / "catalog")
    inventory = tmp_path / "inventory"
    fleet_inventory(inventory, {"low": 2, "medium": 1, "high": 2})
    return {"catalog": catalog, "inventory": inventory, "state": tmp_path / "state"}


@pytest.fixture
def registered(fleet: dict[str, Path]) -> Iterator[Any]:
    """Register a runtime built by the test; yields a function that does it."""
    from prodcontrol.orchestration import runtimes

    refs = []

    def register(rt: Runtime) -> Any:
        ref = runtimes.register(rt)
        refs.append(ref)
        return ref

    yield register
    for ref in refs:
        runtimes.unregister(ref)


def _runtime(fleet: dict[str, Path], **kwargs: Any) -> Runtime:
    fleet["state"].mkdir(exist_ok=True)
    return build_runtime(fleet["state"], fleet["catalog"], fleet["inventory"], **kwargs)


def _task_run_names(flow_run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return sorted(r.name for r in runs)


def test_control_flow_records_one_run_with_named_tasks(
    fleet: dict[str, Path], registered: Any
) -> None:
    from prefect import flow as prefect_flow
    from prefect.runtime import flow_run

    from prodcontrol.orchestration.flows import control_flow

    rt = _runtime(fleet)
    ref = registered(rt)
    seen: dict[str, Any] = {}

    @prefect_flow
    def parent() -> Any:
        seen["parent"] = flow_run.id
        return control_flow(model="low-model-0", runtime=ref)

    result = parent()
    assert result.status == "recorded"
    assert result.verdicts == {"dataset-drift": "pass", "dq-missing-share": "pass"}
    assert result.exit_code == 0 and result.gates == []
    [run] = rt.store.list_runs("low-model-0")
    assert run.status == "succeeded" and run.trigger == "prefect"
    assert run.idempotency_key and run.idempotency_key.startswith("prefect:")
    # one task per model (its controls measured together on data loaded once)
    assert _task_run_names(str(run.flow_run_id)) == ["low-model-0"]


class _BrokenFor(FakeRegistry):
    """A registry with a bug for one model: not an outside-system failure, a crash."""

    def __init__(self, broken: str) -> None:
        super().__init__()
        self.broken = broken

    def resolve_alias(self, model: str, alias: str) -> Any:
        if model == self.broken:
            raise RuntimeError("bug in the registry client")
        return super().resolve_alias(model, alias)


def _seed(registry: FakeRegistry, rt_models: list[str]) -> FakeRegistry:
    for name in rt_models:
        registry.add_version(name, "1", tags={"prodcontrol.approved": "true"})
        registry.set_alias(name, "champion", "1")
    return registry


def test_sweep_isolates_a_failing_model_and_opens_gates(
    fleet: dict[str, Path], registered: Any
) -> None:
    from prodcontrol.orchestration.flows import run_sweep

    names = ["low-model-0", "low-model-1", "medium-model-0", "high-model-0", "high-model-1"]
    registry = _seed(_BrokenFor("low-model-1"), names)
    rt = _runtime(fleet, drift={"high-model-0": 0.6}, registry=registry)
    ref = registered(rt)

    report = run_sweep(None, ref, processes=0, slot="2026-11-02T08:00:00+00:00")

    by_model = {r.model: r for r in report.results}
    assert set(by_model) == set(names)
    assert by_model["low-model-1"].status == "failed"
    assert "bug in the registry client" in (by_model["low-model-1"].error or "")
    for name in ("low-model-0", "medium-model-0", "high-model-1"):
        assert by_model[name].status == "recorded" and by_model[name].exit_code == 0
    drifted = by_model["high-model-0"]
    assert drifted.verdicts["dataset-drift"] == "fail" and drifted.exit_code == 1
    assert len(drifted.gates) == 1
    gate = rt.store.get_gate(drifted.gates[0])
    assert gate.status == "pending" and gate.required_approvals == 2
    assert gate.flow_run_id == report.flow_run_id

    again = run_sweep(None, ref, processes=0, slot="2026-11-02T08:00:00+00:00")
    statuses = {r.model: r.status for r in again.results}
    assert statuses["high-model-0"] == "already recorded"
    assert {r.model: r.gates for r in again.results}["high-model-0"] == drifted.gates
    for name in names:
        finished = [r for r in rt.store.list_runs(name) if r.status != "running"]
        assert len(finished) == (0 if name == "low-model-1" else 1), name
    assert len(rt.store.list_gates(model="high-model-0")) == 1


class _FlakyData(FakeDatasetSource):
    """The data source is down for the first ``failures`` loads, then answers."""

    def __init__(self, inner: FakeDatasetSource, failures: int) -> None:
        super().__init__()
        self.frames = inner.frames
        self.failures = failures

    def load(self, spec: Any, *, now: Any, columns: list[str] | None = None) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise UnreachableError("data source", str(spec.path), "connection refused")
        return super().load(spec, now=now, columns=columns)


def test_outside_system_errors_are_retried_then_recorded(
    fleet: dict[str, Path], registered: Any
) -> None:
    from prodcontrol.orchestration.flows import run_control

    rt = _runtime(fleet)
    rt.datasets = _FlakyData(rt.datasets, failures=1)  # type: ignore[arg-type,misc]
    result = run_control(model="low-model-0", runtime=registered(rt), retry_delay_s=0.01)
    assert result.verdicts == {"dataset-drift": "pass", "dq-missing-share": "pass"}

    down = _runtime(fleet)
    down.datasets = _FlakyData(down.datasets, failures=100)  # type: ignore[arg-type,misc]
    result = run_control(
        model="high-model-0", runtime=registered(down), retry_delay_s=0.01, wait_for_gates=False
    )
    assert set(result.verdicts.values()) == {"error"}
    assert result.exit_code == 3
    assert result.blocking == 2  # high tier is fail-closed: an error blocks
    assert len(result.gates) == 1  # one run, one gate covering both findings
