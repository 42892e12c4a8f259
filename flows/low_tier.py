"""Deployable entry point: the low-tier control sweep (schedule and timezone from tiers.yaml).

``prodcontrol deploy`` points here; run it once with
``prodcontrol sweep --tier low``.
"""

from prodcontrol.orchestration.flows import sweep_flow

low_tier_controls = sweep_flow  # runs named "sweep low" (a shard: "sweep low, shard 2/N")
