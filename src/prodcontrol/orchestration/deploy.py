"""``prodcontrol deploy``: one Prefect deployment per tier, on the tier's cron and timezone.

Two ways, as DESIGN §5 has them: to a work pool (production: a Prefect server, workers pick the
runs up; the code is the project directory, entry points ``flows/<tier>_tier.py``), or
``--serve``: every deployment served from this one process on the embedded default.
The escalation ticker is deployed alongside, every minute.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from prodcontrol.errors import UsageError
from prodcontrol.orchestration.digest import DIGEST_CRON, DIGEST_NAME
from prodcontrol.orchestration.runtimes import RuntimeRef
from prodcontrol.runtime import Runtime

TICKER_CRON = "* * * * *"
TICKER_NAME = "escalation-ticker"
DEFAULT_POOL = "prodcontrol"


class DeploymentSpec(BaseModel):
    """One deployment as prodcontrol wants it, before Prefect sees it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    flow: str
    entrypoint: str
    cron: str
    timezone: str
    parameters: dict[str, Any]
    description: str
    job_variables: dict[str, Any] = {}


def tier_entrypoint(tier: str) -> str:
    return f"flows/{tier}_tier.py:{tier}_tier_controls"


def deployment_specs(rt: Runtime, runtime: RuntimeRef, *, shards: int = 1) -> list[DeploymentSpec]:
    """A sweep deployment per tier (its cron and timezone from tiers.yaml), plus the ticker.

    Each carries the non-secret settings as job variables and names its evidence database.
    ``shards > 1``: each tier's sweep is split into that many flow runs for the pool's workers
    (:mod:`.shards`).
    """
    if shards < 1:
        raise UsageError(f"--shards {shards}: give 1 (one flow run per sweep) or more")
    split = {"shards": shards} if shards > 1 else {}
    from prodcontrol.orchestration.deployment_settings import database_label, job_env

    ref = runtime.model_copy(update={"database": database_label(rt.settings)}).model_dump(
        exclude_none=True
    )
    job_variables = {"env": job_env(rt.settings)}
    specs = [
        DeploymentSpec(
            name=f"{tier}-tier-controls",
            flow="prodcontrol-sweep",
            entrypoint=tier_entrypoint(tier),
            cron=policy.schedule,
            timezone=policy.timezone,
            parameters={"tier": tier, "runtime": ref, "wait_for_gates": True} | split,
            description=f"{policy.title}: controls of every pilot/production {tier}-tier model",
            job_variables=job_variables,
        )
        for tier, policy in sorted(rt.config.catalog.tiers.items())
    ]
    specs.append(
        DeploymentSpec(
            name=TICKER_NAME,
            flow="prodcontrol-escalation-ticker",
            entrypoint="flows/escalation_ticker.py:escalation_ticker",
            cron=TICKER_CRON,
            timezone="UTC",
            parameters={"runtime": ref},
            description="expire due gates, advance escalations, resume runs whose gate closed",
            job_variables=job_variables,
        )
    )
    specs.append(
        DeploymentSpec(
            name=DIGEST_NAME,
            flow="prodcontrol-weekly-digest",
            entrypoint="flows/weekly_digest.py:weekly_digest",
            cron=DIGEST_CRON,
            timezone="UTC",
            parameters={"runtime": ref},
            description="last week's control effectiveness, posted to each tier's risk channel",
            job_variables=job_variables,
        )
    )
    return specs


def _flow_for(spec: DeploymentSpec) -> Any:
    from prodcontrol.orchestration.digest import weekly_digest_flow
    from prodcontrol.orchestration.flows import escalation_ticker_flow, sweep_flow

    if spec.name == DIGEST_NAME:
        return weekly_digest_flow
    return escalation_ticker_flow if spec.name == TICKER_NAME else sweep_flow


def runner_deployments(specs: list[DeploymentSpec]) -> list[Any]:
    """The specs as Prefect RunnerDeployments for ``serve`` (entry points by module path)."""
    from prefect.schedules import Cron
    from prefect.types.entrypoint import EntrypointType

    return [
        _flow_for(spec).to_deployment(
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=spec.timezone)],
            parameters=spec.parameters,
            description=spec.description,
            tags=["prodcontrol"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
        for spec in specs
    ]


def serve(specs: list[DeploymentSpec], limit: int | None = None) -> None:
    """Serve every deployment from this process until interrupted (the embedded default)."""
    from prefect import serve as prefect_serve

    prefect_serve(*runner_deployments(specs), limit=limit, print_starting_message=False)


def deploy_to_pool(specs: list[DeploymentSpec], work_pool: str, project_dir: Path) -> list[str]:
    """Create or update each deployment on ``work_pool`` (a process pool made if missing)."""
    ensure_work_pool(work_pool)
    # Prefect prints its own tables to stdout; keep stdout for our table (or --json)
    with contextlib.redirect_stdout(sys.stderr):
        return [_deploy_one(spec, work_pool, project_dir) for spec in specs]


def _deploy_one(spec: DeploymentSpec, work_pool: str, project_dir: Path) -> str:
    from prefect import Flow
    from prefect.schedules import Cron

    flow: Any = Flow.from_source(source=str(project_dir.resolve()), entrypoint=spec.entrypoint)
    deployment_id = flow.deploy(
        name=spec.name,
        work_pool_name=work_pool,
        build=False,
        push=False,
        schedules=[Cron(spec.cron, timezone=spec.timezone)],
        parameters=spec.parameters,
        description=spec.description,
        tags=["prodcontrol"],
        job_variables=spec.job_variables,
        print_next_steps=False,
        ignore_warnings=True,
    )
    return str(deployment_id)


def ensure_work_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def read_deployments() -> list[dict[str, Any]]:
    """What the Prefect API now holds for prodcontrol: name, flow, schedule, timezone."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags

    tagged = DeploymentFilter(tags=DeploymentFilterTags(all_=["prodcontrol"]))
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(deployment_filter=tagged)
        flows = {d.flow_id: client.read_flow(d.flow_id).name for d in deployments}
    rows = []
    for d in deployments:
        schedule = d.schedules[0].schedule if d.schedules else None
        rows.append(
            {
                "deployment": d.name,
                "flow": flows[d.flow_id],
                "cron": getattr(schedule, "cron", None),
                "timezone": getattr(schedule, "timezone", None),
                "work_pool": d.work_pool_name,
                "entrypoint": d.entrypoint,
                "id": str(d.id),
            }
        )
    return sorted(rows, key=lambda r: str(r["deployment"]))
