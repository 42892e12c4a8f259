"""Vocabulary shared by catalog, inventory and engine: roles, rights, verdicts, durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, PlainSerializer, StringConstraints

OwnerRole = Literal[
    "business_outcome", "data_domain", "model_behaviour", "workflow_impact", "operating_risk"
]
# Roles that hold across every model, held by people rather than assigned per model.
GlobalRole = Literal["risk_committee", "model_risk_officer", "mlops_admin"]
Role = OwnerRole | GlobalRole
DecisionRight = Literal[
    "deploy", "change", "exception", "escalation_outcome", "shutdown", "use_case", "funding"
]
VerdictValue = Literal["not_applicable", "pass", "warn", "fail", "error"]
NOT_APPLICABLE = "not_applicable"
"""A control that does not apply to a model (no categorical feature): recorded with its reason,
never a pass and never an error."""
Severity = Literal["low", "medium", "high", "critical"]
Stage = Literal["experimentation", "pilot", "production", "retired"]
ControlKind = Literal[
    "drift",
    "data_quality",
    "performance",
    "freshness",
    "ownership",
    "review_due",
    "value",
    "serving_approval",
    "genai_evaluation",
    "incident_reporting",
]
GateMode = Literal["none", "single", "two_person"]
TimeoutAction = Literal["rollback", "suspend", "accept"]

OWNER_ROLES: tuple[str, ...] = get_args(OwnerRole)
GLOBAL_ROLES: tuple[str, ...] = get_args(GlobalRole)
ROLES: tuple[str, ...] = OWNER_ROLES + GLOBAL_ROLES
CONTROLLED_STAGES: frozenset[str] = frozenset({"pilot", "production"})

Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]*$", min_length=1, max_length=80),
]

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(value: object) -> timedelta:
    """Read ``"30m"``, ``"2h"``, ``"1d12h"`` or a number of seconds as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string such as '30m', '4h' or '7d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if not text or _DURATION_PART.sub("", text):
            raise ValueError(
                f"'{value}' is not a duration; write it like '30m', '4h', '1d12h' or '2w'"
            )
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    else:
        raise ValueError("a duration is a string such as '30m', '4h' or '7d'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, in the largest whole units: ``"1d12h"``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_SECONDS.items():
        if unit == "w":
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _check_cron(value: object) -> str:
    from cronsim import CronSim, CronSimError  # small pure-Python parser, no SDK

    if not isinstance(value, str):
        raise ValueError("a cron schedule is a string such as '0 6 * * *'")
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"'{value}' has {len(fields)} fields; a cron schedule has 5: "
            "minute hour day-of-month month day-of-week, e.g. '0 6 * * *'"
        )
    try:
        CronSim(value, datetime.now(UTC))
    except CronSimError as exc:
        raise ValueError(
            f"'{value}' is not a valid cron schedule ({exc}); e.g. '0 6 * * *'"
        ) from exc
    return value


Cron = Annotated[str, BeforeValidator(_check_cron)]
