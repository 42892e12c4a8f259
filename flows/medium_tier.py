"""Deployable entry point: the medium-tier control sweep (schedule and timezone from tiers.yaml).

``prodcontrol deploy`` points here; run it once with
``prodcontrol sweep --tier medium``.
"""

from prodcontrol.orchestration.flows import sweep_flow

medium_tier_controls = sweep_flow  # runs named "sweep medium" (a shard: "sweep medium, shard 2/N")
