"""A tier's sweep split over the work pool's workers: more Prefect workers, not a pool of ours.

The sweep's first flow run (from its deployment, ``shards=N``) starts N-1 flow runs of the same
deployment with ``shard=1..N-1`` and the slot it computed, so every shard keys its models'
runs in the same cron slot. Any worker of the work pool picks them up; each does every N-th
model of the tier (the config's order). The first flow run does shard 0, then waits for the
others and reads what they recorded from the evidence store (the source of truth, not their
Prefect results).

A shard whose flow run ends without recording all its models (its worker was killed: the flow
run stays ``Running`` in Prefect with nobody behind it) is given up once it has recorded
nothing new for ``stall_s`` seconds: its missing models are reported ``failed``, and the slot's
next run (a retry, or the deployment run again) records them, once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.errors import UsageError
from prodcontrol.orchestration.model_run import ModelResult, recorded_result
from prodcontrol.runtime import Runtime

STALL_S = 900.0
"""Seconds a shard may record nothing new before its missing models are reported failed."""
POLL_S = 5.0
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


class Shard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int
    count: int
    flow_run_id: str
    models: list[str]


def start(
    *,
    tier: str,
    slot: str | None,
    entries: Sequence[ModelEntry],
    count: int,
    parent: str | None,
    retry_delay_s: float,
    processes: int | None = None,
) -> list[Shard]:
    """Flow runs of this flow run's deployment for shards 1..count-1 (once per parent run)."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment
    from prefect.runtime import deployment

    deployment_id = deployment.id
    if not deployment_id:
        raise UsageError(
            "a sweep split over workers (shards > 1) runs from its deployment on a work pool "
            "(prodcontrol deploy --work-pool POOL); run it with shards=1 here"
        )
    started = []
    for number in range(1, count):
        parameters: dict[str, Any] = {
            "tier": tier,
            "slot": slot,
            "shards": count,
            "shard": number,
            "wait_for_gates": False,
            "retry_delay_s": retry_delay_s,
        }
        if processes is not None:
            parameters["processes"] = processes
        # called from a sync flow, outside any event loop: it returns the FlowRun
        run: FlowRun = run_deployment(  # type: ignore[assignment]
            name=deployment_id,
            parameters=parameters,
            timeout=0,
            idempotency_key=f"{parent}:shard:{number}" if parent else None,
        )
        started.append(
            Shard(
                number=number,
                count=count,
                flow_run_id=str(run.id),
                models=[e.name for e in entries[number::count]],
            )
        )
    return started


def collect(
    rt: Runtime,
    started: list[Shard],
    keys: dict[str, str],
    *,
    stall_s: float = STALL_S,
    poll_s: float = POLL_S,
) -> list[ModelResult]:
    """Wait for every shard to end (or stall), then its models' results from the store."""
    from prefect.client.orchestration import get_client

    entries = {name: rt.config.model(name) for shard in started for name in shard.models}
    pending = {shard.flow_run_id: list(shard.models) for shard in started}
    last_progress = {shard.flow_run_id: time.monotonic() for shard in started}
    ended: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(ended) < len(started):
            for shard in started:
                run_id = shard.flow_run_id
                if run_id in ended:
                    continue
                state = client.read_flow_run(UUID(run_id)).state
                kind = str(state.type.value) if state else "PENDING"
                left = _unfinished(rt, entries, keys, pending[run_id])
                if len(left) < len(pending[run_id]):
                    last_progress[run_id] = time.monotonic()
                pending[run_id] = left
                if kind in FINAL or not left:
                    ended[run_id] = kind.lower()
                elif time.monotonic() - last_progress[run_id] > stall_s:
                    ended[run_id] = f"stalled ({state.name if state else 'no state'})"
            if len(ended) < len(started):
                time.sleep(poll_s)
    results = []
    for shard in started:
        for name in shard.models:
            found = recorded_result(rt, entries[name], keys[name], by_flow_run=shard.flow_run_id)
            if found is None:
                found = ModelResult(
                    model=name,
                    tier=entries[name].tier,
                    status="failed",
                    error=(
                        f"shard {shard.number + 1}/{shard.count} (flow run {shard.flow_run_id}) "
                        f"ended {ended[shard.flow_run_id]} without recording it; the slot's "
                        "next run records it"
                    ),
                    exit_code=1,
                )
            results.append(found)
    return results


def _unfinished(
    rt: Runtime,
    entries: dict[str, ModelEntry],
    keys: dict[str, str],
    models: list[str],
    look_ahead: int = 8,
) -> list[str]:
    """``models`` less those recorded; stops after ``look_ahead`` unrecorded ones (a shard
    records its models roughly in order), so a poll costs a few queries, not one per model."""
    left: list[str] = []
    for name in models:
        if len(left) >= look_ahead:
            left.append(name)
            continue
        recorded = any(
            r.idempotency_key == keys[name] and r.status != "running"
            for r in rt.store.list_runs(entries[name].name)
        )
        if not recorded:
            left.append(name)
    return left
