"""Ownership readiness: a model in pilot or production names a person for every owner role."""

from __future__ import annotations

from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.catalog.types import CONTROLLED_STAGES, OWNER_ROLES


def missing_owner_roles(model: ModelEntry) -> list[str]:
    """Owner roles with nobody named, in the catalog's order."""
    assigned = model.owners.assigned()
    return [role for role in OWNER_ROLES if role not in assigned]


def is_ready(model: ModelEntry) -> bool:
    return not missing_owner_roles(model)


def readiness_label(model: ModelEntry) -> str:
    """What a table shows: ``ready``, or what is missing and whether it blocks."""
    missing = missing_owner_roles(model)
    if not missing:
        return "ready"
    blocking = "BLOCKED" if model.stage in CONTROLLED_STAGES else "not ready"
    return f"{blocking}: no {', '.join(missing)}"
