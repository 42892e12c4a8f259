"""The small pure parts of the orchestration: pause keys, wait mode, slots, retries, runtime refs.

(Here, not in tests/unit, because importing the orchestration imports Prefect: a few seconds.)
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from prodcontrol.catalog.validate import load_config
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import Gate
from prodcontrol.orchestration import runtimes
from prodcontrol.orchestration.flows import retry_delays, schedule_slot, sweep_key
from prodcontrol.orchestration.gate_wait import (
    GateInput,
    gate_of_key,
    pause_key,
    wait_mode,
)
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings
from prodcontrol.testing import ManualClock

ROOT = Path(__file__).resolve().parents[2]


def _gate(version: int = 3) -> Gate:
    return Gate(
        id="g-1",
        model="fraud-detector",
        model_version="3",
        kind="finding",
        right="escalation_outcome",
        status="pending",
        opened_at=datetime(2026, 11, 2, tzinfo=UTC),
        version=version,
    )


def test_pause_keys_name_their_gate_and_change_with_each_attempt() -> None:
    gate = _gate()
    assert gate_of_key(pause_key(gate, 0)) == "g-1"
    assert pause_key(gate, 0) != pause_key(gate, 1) != pause_key(_gate(4), 1)
    assert gate_of_key("3") is None and gate_of_key(None) is None


def test_long_waits_suspend_only_runs_that_have_a_deployment() -> None:
    assert wait_mode(8 * 3600, has_deployment=True, short_wait_s=900) == "suspend"
    assert wait_mode(math.inf, has_deployment=True, short_wait_s=900) == "suspend"
    assert wait_mode(600, has_deployment=True, short_wait_s=900) == "pause"
    assert wait_mode(8 * 3600, has_deployment=False, short_wait_s=900) == "pause"


def test_gate_input_carries_the_gate_state() -> None:
    answer = GateInput.of(_gate())
    assert (answer.gate_id, answer.status, answer.decision) == ("g-1", "pending", None)


def test_schedule_slot_is_the_last_cron_fire_time_in_the_tier_timezone() -> None:
    clock = ManualClock(datetime(2026, 11, 4, 13, 37, tzinfo=UTC))  # a Wednesday
    config = load_config(ROOT / "control_catalog", ROOT / "examples")
    rt = Runtime(Settings(inventory_dir=ROOT / "examples"), clock, config=config)
    high = config.catalog.tiers["high"].schedule
    assert high == "0 */4 * * *"
    assert schedule_slot(rt, "high") == "2026-11-04T12:00:00+00:00"
    assert schedule_slot(rt, "low") == "2026-11-02T06:00:00+00:00"  # weekly, Monday 06:00
    assert sweep_key("high", "S", "m") == "sweep:high:S:m"


def test_retries_back_off_exponentially() -> None:
    assert retry_delays(2.0) == [2.0, 8.0]


def test_runtime_refs_resolve_once_per_process_and_say_what_is_wrong() -> None:
    rt = Runtime(Settings(inventory_dir=ROOT / "examples"))
    ref = runtimes.register(rt)
    assert runtimes.resolve(ref) is rt
    assert runtimes.resolve(ref.model_dump()) is rt
    assert not ref.crosses_processes
    runtimes.unregister(ref)
    with pytest.raises(UsageError, match="another process"):
        runtimes.resolve(ref)
    with pytest.raises(UsageError, match="module:function"):
        runtimes.resolve(runtimes.RuntimeRef(factory="no_such_module:make"))
