"""Escalation chains, reminders, acknowledgement, the messages people get and the outbox sender."""
