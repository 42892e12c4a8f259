"""The weekly operating digest as a Prefect flow: last week's control effectiveness per tier,
posted to each tier's risk channel through the outbox (once per ISO week, so re-runs are safe)."""

from __future__ import annotations

from prefect import flow

from prodcontrol.orchestration.runtimes import RuntimeRef, resolve

DIGEST_CRON = "0 7 * * 1"  # Mondays 07:00 UTC, before the week's first review meetings
DIGEST_NAME = "weekly-digest"


@flow(name="prodcontrol-weekly-digest", flow_run_name="weekly digest")
def weekly_digest_flow(runtime: RuntimeRef | None = None) -> int:
    """Queue this week's digest for every tier's risk channel (once); return how many tiers."""
    from prodcontrol.control.reports.review_report import post_weekly_digest

    rt = resolve(runtime or RuntimeRef())
    return len(post_weekly_digest(rt))
