"""Deployments per tier (cron and timezone from tiers.yaml) and the CLI commands
``deploy``, ``run`` and ``sweep`` against the session's Prefect test harness."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodcontrol.catalog.validate import load_config
from prodcontrol.cli.app import run
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
TIERS = yaml.safe_load((ROOT / "control_catalog" / "tiers.yaml").read_text())["tiers"]


def _runtime(tmp_path: Path) -> Runtime:
    settings = Settings(state_dir=tmp_path / "state", inventory_dir=ROOT / "examples")
    return Runtime(settings, config=load_config(ROOT / "control_catalog", ROOT / "examples"))


def test_one_deployment_per_tier_on_its_cron_plus_the_ticker(tmp_path: Path) -> None:
    from prodcontrol.orchestration.deploy import deployment_specs
    from prodcontrol.orchestration.runtimes import RuntimeRef

    specs = {s.name: s for s in deployment_specs(_runtime(tmp_path), RuntimeRef())}
    assert set(specs) == {f"{t}-tier-controls" for t in TIERS} | {
        "escalation-ticker",
        "weekly-digest",
    }
    for tier, policy in TIERS.items():
        spec = specs[f"{tier}-tier-controls"]
        assert (spec.cron, spec.timezone) == (policy["schedule"], policy.get("timezone", "UTC"))
        assert spec.parameters["tier"] == tier
        path, _, name = spec.entrypoint.partition(":")
        assert (ROOT / path).is_file() and name in (ROOT / path).read_text()
    assert specs["escalation-ticker"].cron == "* * * * *"


def test_shards_split_each_tier_sweep_and_nothing_else(tmp_path: Path) -> None:
    from prodcontrol.errors import UsageError
    from prodcontrol.orchestration.deploy import deployment_specs
    from prodcontrol.orchestration.runtimes import RuntimeRef

    specs = deployment_specs(_runtime(tmp_path), RuntimeRef(), shards=3)
    for spec in specs:
        split = spec.name.endswith("-tier-controls")
        assert spec.parameters.get("shards") == (3 if split else None), spec.name
    one = deployment_specs(_runtime(tmp_path), RuntimeRef())
    assert all("shards" not in spec.parameters for spec in one)  # the default: one flow run
    with pytest.raises(UsageError, match="--shards 0"):
        deployment_specs(_runtime(tmp_path), RuntimeRef(), shards=0)


def test_flow_entry_points_load_as_prefect_flows() -> None:
    from prefect.flows import load_flow_from_entrypoint

    for tier in TIERS:
        flow = load_flow_from_entrypoint(str(ROOT / f"flows/{tier}_tier.py:{tier}_tier_controls"))
        assert flow.name == "prodcontrol-sweep"
    ticker = load_flow_from_entrypoint(str(ROOT / "flows/escalation_ticker.py:escalation_ticker"))
    assert ticker.name == "prodcontrol-escalation-ticker"
    digest = load_flow_from_entrypoint(str(ROOT / "flows/weekly_digest.py:weekly_digest"))
    assert digest.name == "prodcontrol-weekly-digest"


@pytest.mark.usefixtures("prefect_harness")
def test_weekly_digest_flow_queues_one_digest_per_tier_once_a_week(tmp_path: Path) -> None:
    from prodcontrol.orchestration.digest import weekly_digest_flow
    from prodcontrol.orchestration.runtimes import register

    rt = _runtime(tmp_path)
    ref = register(rt)
    assert weekly_digest_flow(runtime=ref) == len(TIERS)
    weekly_digest_flow(runtime=ref)  # the same ISO week again: nothing queued twice
    digests = rt.store.list_notifications()
    assert len(digests) == len(TIERS)
    channels = {n.recipient for n in digests}
    assert {policy["risk_channel"] for policy in TIERS.values()} <= channels


@pytest.mark.usefixtures("prefect_harness")
def test_deploy_command_creates_the_deployments_on_a_work_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    code = run(
        [
            "deploy",
            "--json",
            "--work-pool",
            "pc-test",
            "--project-dir",
            str(ROOT),
            "--inventory",
            str(ROOT / "examples"),
        ]
    )
    assert code == 0
    rows = {r["deployment"]: r for r in json.loads(capsys.readouterr().out)}
    for tier, policy in TIERS.items():
        row = rows[f"{tier}-tier-controls"]
        assert (row["cron"], row["timezone"]) == (policy["schedule"], policy.get("timezone", "UTC"))
        assert row["work_pool"] == "pc-test" and row["flow"] == "prodcontrol-sweep"
    assert rows["escalation-ticker"]["cron"] == "* * * * *"

    from prodcontrol.orchestration.deploy import deployment_specs, runner_deployments
    from prodcontrol.orchestration.runtimes import RuntimeRef

    served = runner_deployments(deployment_specs(_runtime(tmp_path), RuntimeRef()))
    assert sorted(d.name for d in served) == sorted(rows)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_run_and_sweep_commands_on_real_mlflow_and_evidently(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    seeded_mlflow: str,
) -> None:
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PRODCONTROL_MLFLOW_TRACKING_URI", seeded_mlflow)
    inventory = str(ROOT / "examples")

    code = run(["run", "churn-classifier", "--inventory", inventory, "--json"])
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert result["status"] == "recorded" and result["model_version"] != "unresolved"
    assert code == result["exit_code"]
    low = load_config(ROOT / "control_catalog", ROOT / "examples").catalog.tiers["low"]
    assert set(result["verdicts"]) == set(low.controls)

    code = run(["sweep", "--tier", "low", "--processes", "0", "--inventory", inventory, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in report["results"]] == ["churn-classifier"]
    assert report["results"][0]["status"] == "recorded"
    assert code == report["results"][0]["exit_code"]
