"""A value shortfall found by run_checks escalates to the business-outcome owner over Slack.

The real check runner, escalation chain, outbox sender and slack-sdk client, against the local
Slack Web API server. fraud-detector (high tier) promises 60 % of fraud value caught; MLflow's
history for its serving run says 30 %: 50 % short, at or beyond the fail threshold of 20 %.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from slack_helpers import make_runtime

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.schema import EscalationPolicy
from prodcontrol.control.escalation import escalation
from prodcontrol.control.escalation.outbox import OutboxSender
from prodcontrol.control.runs.checks import run_checks
from prodcontrol.engine.value import escalation_policy
from prodcontrol.ports import MetricPoint
from prodcontrol.runtime import Runtime
from prodcontrol.testing import FakeRegistry, ManualClock
from prodcontrol.testing.slack_server import LocalSlackServer

MODEL = "fraud-detector"
AMARA = "DU0AMARA01"  # the DM channel the local server opens for the business-outcome owner


def value_catalog(tmp_path: Path) -> Path:
    """The bundled catalog with the high tier running only value capture and ownership."""
    catalog = tmp_path / "catalog"
    shutil.copytree(default_catalog_dir(), catalog)
    tiers = catalog / "tiers.yaml"
    text = tiers.read_text()
    high = text.index("  high:")
    start = text.index("    controls: [", high)
    end = text.index("]\n", start) + 2
    text = text[:start] + "    controls: [value-capture, ownership-readiness]\n" + text[end:]
    overrides = text.index("    thresholds:\n", high)
    text = text[:overrides] + text[text.index("    sampling:", overrides) :]
    tiers.write_text(text)
    return catalog


def drain(rt: Runtime) -> int:
    return OutboxSender(rt.store, rt.notifier, rt.clock, workers=1).drain().sent


def test_value_shortfall_reaches_the_business_outcome_owner(
    tmp_path: Path, sqlite_url: str, slack_server: LocalSlackServer
) -> None:
    clock = ManualClock()
    rt = make_runtime(
        tmp_path, sqlite_url, clock, slack_server, catalog_dir=value_catalog(tmp_path)
    )
    registry = rt.registry
    assert isinstance(registry, FakeRegistry)
    run_id = registry.resolve_alias(MODEL, "champion").run_id
    assert run_id is not None
    registry.history[(run_id, "fraud_value_caught_share")] = [
        MetricPoint(key="fraud_value_caught_share", value=0.3, at=clock.now() - timedelta(days=d))
        for d in (1, 2, 3)
    ]

    result = run_checks(rt, MODEL)
    verdicts = {v.control_id: v for v in rt.store.verdicts_for(result.run_id)}
    value = verdicts["value-capture"]
    assert (value.verdict, value.value) == ("fail", 0.5)
    assert value.details["kpi"] == "fraud losses avoided (share of fraud value)"
    assert value.details["observed"] == 0.3 and value.details["target"] == 0.6

    drain(rt)
    clock.advance(timedelta(hours=1))  # the high tier's chain reaches business_outcome at 1 h
    escalation.tick(rt)
    drain(rt)
    to_amara = slack_server.messages(AMARA)
    assert to_amara, "the business-outcome owner got no message"
    assert "value-capture" in str(to_amara[-1]["blocks"])


def test_value_findings_put_the_business_owner_first() -> None:
    from prodcontrol.catalog.validate import load_config

    config = load_config(default_catalog_dir(), Path(__file__).resolve().parents[2] / "examples")
    medium = config.catalog.tiers["medium"].escalation
    value = escalation_policy(medium, config.catalog.controls["value-capture"])
    assert isinstance(value, EscalationPolicy)
    assert [(s.after, s.role) for s in value.steps[:2]] == [
        (timedelta(0), "business_outcome"),
        (timedelta(0), "model_behaviour"),
    ]
    assert escalation_policy(medium, config.catalog.controls["dataset-drift"]) is medium
