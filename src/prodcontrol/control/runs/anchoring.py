"""Automatic anchors: what every control run and every ticker tick calls when it is done.

One small call (:func:`anchor_if_due`), rate-limited by ``evidence_anchor_interval_s``, so
that anchoring needs no schedule of its own and cannot be forgotten. It never raises: a sink
that is down is recorded in the chain (``evidence.anchored`` with ``failed``), the run or tick
that called it keeps its own result, and ``evidence verify`` reports the gap once it outlives
``evidence_anchor_max_age_s``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from prodcontrol.control.ports import AnchorPorts

if TYPE_CHECKING:
    from prodcontrol.evidence.anchor import AnchorOutcome

log = logging.getLogger(__name__)


def anchor_if_due(rt: AnchorPorts, *, force: bool = False) -> AnchorOutcome | None:
    """Anchor the signed head to the configured sinks when the last anchor is old enough."""
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks
    from prodcontrol.evidence.anchor import anchor_head

    every = timedelta(seconds=0 if force else rt.settings.evidence_anchor_interval_s)
    try:
        outcome = anchor_head(rt.store, anchor_sinks(rt.settings), rt.clock.now(), every=every)
    except Exception:  # anchoring must never take a control run or a tick down with it
        log.exception("anchoring the evidence chain head failed")
        return None
    for sink, reason in outcome.failed.items():
        log.warning("anchoring entry %s to %s failed: %s", outcome.seq, sink, reason)
    return outcome
