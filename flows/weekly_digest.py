"""Deployable entry point: the weekly operating digest to each tier's risk channel."""

from prodcontrol.orchestration.digest import weekly_digest_flow

weekly_digest = weekly_digest_flow
