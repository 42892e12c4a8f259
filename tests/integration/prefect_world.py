"""A small fleet for the Prefect flow tests: a catalog whose tiers run drift + missing values,
generated models per tier, fake registry/data/checker and a real SQLite evidence store.

:func:`env_runtime` builds the same runtime from environment variables, so a sweep started in a
subprocess (the kill -9 test) or in a worker process can build it too.
(A unique module name: test folders are not packages.)
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.schema import Control, Sampling
from prodcontrol.catalog.validate import load_config
from prodcontrol.clock import Clock
from prodcontrol.ports import Dataset, Measurement
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeDatasetSource, FakeRegistry

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = ["dataset-drift", "dq-missing-share"]
TEMPLATES = {
    "low": "churn-classifier",
    "medium": "credit-limit-regressor",
    "high": "fraud-detector",
}


def small_catalog(dst: Path) -> Path:
    """The bundled catalog with every tier running only drift + missing values."""
    shutil.copytree(ROOT / "control_catalog", dst)
    tiers_file = dst / "tiers.yaml"
    tiers = yaml.safe_load(tiers_file.read_text())
    for policy in tiers["tiers"].values():
        policy["controls"] = list(CONTROLS)
        policy.pop("thresholds", None)
    tiers_file.write_text(yaml.safe_dump(tiers, sort_keys=False))
    return dst


def fleet_inventory(dst: Path, counts: dict[str, int]) -> list[str]:
    """``counts[tier]`` production models per tier, copied from the example of that tier."""
    dst.mkdir(parents=True, exist_ok=True)
    examples = yaml.safe_load((ROOT / "examples" / "models.yaml").read_text())["models"]
    by_name = {m["name"]: m for m in examples}
    models, names = [], []
    for tier, count in counts.items():
        for number in range(count):
            entry = dict(by_name[TEMPLATES[tier]])
            name = f"{tier}-model-{number}"
            entry.update(name=name, stage="production")
            entry["data"] = dict(entry["data"]) | {
                "reference": {"type": "file", "path": f"data/{name}-reference.csv"},
                "current": {"type": "file", "path": f"data/{name}-current.csv"},
            }
            models.append(entry)
            names.append(name)
    (dst / "models.yaml").write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    shutil.copy(ROOT / "examples" / "people.yaml", dst / "people.yaml")
    return names


class KeyedChecker:
    """Drift share per model (read from the data source's name); an optional delay per call."""

    def __init__(self, drift: dict[str, float], delay_s: float = 0.0) -> None:
        self.drift, self.delay_s = drift, delay_s

    def measure(
        self,
        control: Control,
        reference: Dataset,
        current: Dataset,
        *,
        sampling: Sampling,
        prediction_column: str | None,
        out_dir: str,
        contract: object = None,
    ) -> Measurement:
        del reference, sampling, prediction_column, out_dir, contract
        if self.delay_s:
            time.sleep(self.delay_s)
        model = current.source.removeprefix("data/").removesuffix("-current.csv")
        value = self.drift.get(model, 0.0) if control.kind == "drift" else 0.0
        return Measurement(control_id=control.id, value=value)


def build_runtime(
    state: Path,
    catalog: Path,
    inventory: Path,
    *,
    drift: dict[str, float] | None = None,
    delay_s: float = 0.0,
    clock: Clock | None = None,
    registry: FakeRegistry | None = None,
) -> Runtime:
    config = load_config(catalog, inventory)
    url = f"sqlite:///{state / 'evidence.db'}"
    upgrade(url)
    if registry is None:
        registry = FakeRegistry()
        for name in config.inventory.models:
            for version in ("1", "2"):
                registry.add_version(name, version, tags={"prodcontrol.approved": "true"})
            registry.set_alias(name, "champion", "2")
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0], "channel": ["web", "pos", "web"]})
    datasets = FakeDatasetSource()
    for name in config.inventory.models:
        for side in ("reference", "current"):
            datasets.add(f"data/{name}-{side}.csv", frame)
    settings = Settings(
        state_dir=state, catalog_dir=catalog, inventory_dir=inventory, database_url=url
    )
    return Runtime(
        settings,
        clock,
        config=config,
        store=SqlEvidenceStore(url, clock=clock) if clock else SqlEvidenceStore(url),
        registry=registry,
        metrics=registry,
        datasets=datasets,
        checker=KeyedChecker(drift or {}, delay_s),
    )


def runtime_env(
    state: Path, catalog: Path, inventory: Path, drift: dict[str, float], delay_s: float
) -> dict[str, str]:
    """The environment :func:`env_runtime` reads."""
    return {
        "PCT_STATE": str(state),
        "PCT_CATALOG": str(catalog),
        "PCT_INVENTORY": str(inventory),
        "PCT_DRIFT": ",".join(f"{k}={v}" for k, v in drift.items()),
        "PCT_DELAY": str(delay_s),
    }


def env_runtime() -> Runtime:
    """The factory a subprocess names as ``prefect_world:env_runtime``."""
    env: Any = os.environ
    drift = dict(item.split("=") for item in env["PCT_DRIFT"].split(",") if item)
    return build_runtime(
        Path(env["PCT_STATE"]),
        Path(env["PCT_CATALOG"]),
        Path(env["PCT_INVENTORY"]),
        drift={k: float(v) for k, v in drift.items()},
        delay_s=float(env["PCT_DELAY"]),
    )
