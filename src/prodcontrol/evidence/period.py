"""Evidence periods as users type them: ``--from``/``--to`` days, inclusive, in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from prodcontrol.errors import UsageError


def parse_day(value: str, option: str) -> datetime:
    """``YYYY-MM-DD`` (or a full ISO timestamp) as an aware UTC datetime."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date; write it as YYYY-MM-DD") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """``--from``/``--to`` as ``[start, end)``; ``--to`` names the last day included."""
    start = parse_day(since, "--from") if since else None
    end = parse_day(until, "--to") if until else None
    if end is not None and until is not None and len(until) == 10:
        end += timedelta(days=1)
    if start and end and end <= start:
        raise UsageError(f"--to {until} is before --from {since}; swap them")
    return start, end
