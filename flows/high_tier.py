"""Deployable entry point: the high-tier control sweep (schedule and timezone from tiers.yaml).

``prodcontrol deploy`` points here; run it once with
``prodcontrol sweep --tier high``.
"""

from prodcontrol.orchestration.flows import sweep_flow

high_tier_controls = sweep_flow  # runs named "sweep high" (a shard: "sweep high, shard 2/N")
