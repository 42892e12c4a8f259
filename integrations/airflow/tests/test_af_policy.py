"""When the check task fails: the ``fail_on`` policy over a verdict table (no Airflow run)."""

from __future__ import annotations

from typing import Any

import pytest

from prodcontrol_airflow.verdicts import failure_reason


def table(*findings: dict[str, Any], verdicts: list[str] | None = None) -> dict[str, Any]:
    return {
        "model": "fraud-detector",
        "model_version": "2",
        "tier": "high",
        "verdicts": [{"control_id": f"c{i}", "verdict": v} for i, v in enumerate(verdicts or [])],
        "findings": list(findings),
    }


BLOCKING_UNGATED = {"control_id": "dq-schema", "verdict": "error", "blocking": True, "gated": False}
BLOCKING_GATED = {"control_id": "dataset-drift", "verdict": "fail", "blocking": True, "gated": True}


@pytest.mark.parametrize(
    ("findings", "verdicts", "fail_on", "fails"),
    [
        ([BLOCKING_UNGATED], ["error"], "policy", True),  # nobody decides: block here
        ([BLOCKING_GATED], ["fail"], "policy", False),  # the gate task decides
        ([], ["warn", "pass"], "policy", False),
        ([BLOCKING_GATED], ["fail"], "fail", True),
        ([], ["warn"], "fail", False),
        ([BLOCKING_UNGATED], ["error"], "never", False),
    ],
)
def test_fail_on_policy(
    findings: list[dict[str, Any]], verdicts: list[str], fail_on: Any, fails: bool
) -> None:
    reason = failure_reason(table(*findings, verdicts=verdicts), fail_on)
    assert (reason is not None) == fails
    if reason:
        assert reason.startswith("fraud-detector v2 (high tier): ")
