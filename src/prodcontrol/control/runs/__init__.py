"""Measure a model's controls and close the run: verdicts, findings, the run's gate, the first
escalation step and the outbox rows, in one transaction."""
