"""A runtime on the example inventory with a real evidence store, for the gate and action tests.

(A unique module name: test folders are not packages.)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from prodcontrol.adapters.store.migrate import upgrade
from prodcontrol.adapters.store.sql import SqlEvidenceStore
from prodcontrol.catalog.config import Config
from prodcontrol.catalog.validate import load_config
from prodcontrol.evidence import Finding, FindingIn, VerdictIn
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import FakeRegistry, ManualClock

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CATALOG = ROOT / "control_catalog"
APPROVED = {"prodcontrol.approved": "true"}


class TickingClock(ManualClock):
    """A manual clock that also moves one millisecond per read, so records sort as written."""

    def now(self) -> datetime:
        return self.advance(timedelta(milliseconds=1))


def example_config() -> Config:
    return load_config(CATALOG, EXAMPLES)


def seeded_registry() -> FakeRegistry:
    """fraud-detector v1..v3 and credit-limit-regressor v1..v2, v1/v2 approved, newest serving."""
    registry = FakeRegistry()
    for model, count in (("fraud-detector", 3), ("credit-limit-regressor", 2)):
        for number in range(1, count + 1):
            registry.add_version(model, str(number), tags=APPROVED if number < count else {})
        registry.set_alias(model, "champion", str(count))
    registry.add_version("pricing-experiment", "1")
    return registry


def make_runtime(
    url: str, state_dir: Path, clock: ManualClock, registry: Any, config: Config | None = None
) -> Runtime:
    upgrade(url)
    store = SqlEvidenceStore(url, clock=clock)
    settings = Settings(state_dir=state_dir, inventory_dir=EXAMPLES, database_url=url)
    return Runtime(
        settings, clock, config=config or example_config(), store=store, registry=registry
    )


def record_finding(
    rt: Runtime,
    model: str,
    version: str,
    *,
    control: str = "dataset-drift",
    verdict: str = "fail",
    tier: str | None = None,
    status: str = "open",
) -> Finding:
    """One finished control run on ``version`` with one non-pass verdict and its finding."""
    tier = tier or rt.config.model(model).tier
    run = rt.store.start_run(model, version, tier, "test")
    rt.store.finish_run(
        run.id,
        "failed",
        verdicts=[
            VerdictIn(
                control_id=control,
                kind="drift",
                verdict=verdict,  # type: ignore[arg-type]
                value=0.5,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason=f"{control} is {verdict}",
            )
        ],
        artifacts=[],
        findings=[
            FindingIn(
                control_id=control,
                severity="high",
                blocking=True,
                status=status,  # type: ignore[arg-type]
            )
        ],
    )
    return next(f for f in rt.store.list_findings(model=model) if f.run_id == run.id)


def passing_run(rt: Runtime, model: str, version: str) -> None:
    run = rt.store.start_run(model, version, rt.config.model(model).tier, "test")
    rt.store.finish_run(
        run.id,
        "succeeded",
        verdicts=[
            VerdictIn(
                control_id="dataset-drift",
                kind="drift",
                verdict="pass",
                value=0.0,
                warn=0.1,
                fail=0.3,
                direction="higher_is_worse",
                reason="no drift",
            )
        ],
        artifacts=[],
        findings=[],
    )
