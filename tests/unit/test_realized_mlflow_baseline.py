"""``performance-realized`` with ``baseline: mlflow``: the labelled predictions' metric against
the metric logged on the approved version's run, on the fakes (exact numbers)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from prodcontrol.control.runs.checks import measure_control, open_run
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import (
    FakeDatasetSource,
    FakeDriftChecker,
    FakeRegistry,
    InMemoryEvidenceStore,
    ManualClock,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "demand-forecaster"


def test_realized_against_the_approved_versions_metric(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    shutil.copytree(ROOT / "control_catalog", catalog)
    controls = catalog / "controls.yaml"
    text = controls.read_text().replace("baseline: reference,", "baseline: mlflow,")
    assert "baseline: mlflow," in text
    controls.write_text(text)
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    shutil.copy(ROOT / "examples" / "performance" / "people.yaml", inventory)
    models = yaml.safe_load((ROOT / "examples" / "performance" / "models.yaml").read_text())
    entry = next(m for m in models["models"] if m["name"] == MODEL)
    entry["data"]["segments"] = []
    (inventory / "models.yaml").write_text(yaml.safe_dump({"models": [entry]}))

    registry = FakeRegistry()
    registry.add_version(MODEL, "1", {"mae": 2.0}, {"prodcontrol.approved": "true"})
    registry.add_version(MODEL, "2", {"r2": 0.5})
    registry.set_alias(MODEL, "champion", "2")
    features = {f"x{i}": [0.1, 0.2, 0.3, 0.4] for i in range(10)}
    current = pd.DataFrame(features | {"order_id": [1, 2, 3, 4], "prediction": [10, 12, 8, 5]})
    data = FakeDatasetSource()
    data.add("data/demand-reference.csv", current.assign(units=[10, 12, 8, 5]))
    data.add("data/demand-current.csv", current)
    data.add(
        "data/demand-sales.parquet", pd.DataFrame({"order_id": [1, 2, 3], "units": [13, 12, 7]})
    )
    clock = ManualClock()
    settings = Settings(state_dir=tmp_path / "state", inventory_dir=inventory, catalog_dir=catalog)
    rt = Runtime(
        settings,
        clock,
        store=InMemoryEvidenceStore(clock=clock),
        registry=registry,
        datasets=data,
        checker=FakeDriftChecker(values={}),
    )
    ctx = open_run(rt, MODEL, trigger="test")
    outcome = measure_control(rt, ctx, "performance-realized")
    assert outcome.error is None, outcome.error
    # MAE on orders 1-3: (3 + 0 + 1) / 3; against the approved version's logged MAE of 2.0
    assert outcome.details["realized"] == pytest.approx(4 / 3)
    assert outcome.details["baseline"] == 2.0
    assert outcome.details["baseline_source"] == "the approved version's run in MLflow"
    assert outcome.value == pytest.approx((4 / 3 - 2.0) / 2.0)  # better: a negative drop
    assert outcome.details["coverage"] == pytest.approx(0.75)

    registry.versions[MODEL]["1"].metrics.pop("mae")
    missing = measure_control(rt, ctx, "performance-realized")
    assert missing.error is not None and "mae" in missing.error, missing.error
