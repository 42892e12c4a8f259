"""Deployable entry point: the escalation ticker, every minute.

Expires due gates (applying the tier's timeout action), advances escalations, delivers the
outbox and resumes flow runs whose gate was decided while nobody was watching.
"""

from prodcontrol.orchestration.flows import escalation_ticker_flow

escalation_ticker = escalation_ticker_flow
