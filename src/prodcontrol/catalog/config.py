"""The loaded, checked catalog and inventory, with the look-ups the rest of prodcontrol needs."""

from __future__ import annotations

from dataclasses import dataclass

from prodcontrol.catalog.loader import Catalog, Inventory
from prodcontrol.catalog.schema import Control, ModelEntry, Person, Thresholds, TierPolicy
from prodcontrol.catalog.types import CONTROLLED_STAGES, GLOBAL_ROLES, DecisionRight
from prodcontrol.errors import UsageError


@dataclass(frozen=True)
class Config:
    catalog: Catalog
    inventory: Inventory

    def model(self, name: str) -> ModelEntry:
        try:
            return self.inventory.models[name]
        except KeyError:
            known = ", ".join(sorted(self.inventory.models)) or "none"
            raise UsageError(f"unknown model '{name}'; models in the inventory: {known}") from None

    def tier(self, model: ModelEntry) -> TierPolicy:
        return self.catalog.tiers[model.tier]

    def person(self, person_id: str) -> Person:
        try:
            return self.inventory.people[person_id]
        except KeyError:
            known = ", ".join(sorted(self.inventory.people))
            raise UsageError(f"unknown person '{person_id}'; people.yaml has: {known}") from None

    def controls_for(self, model: ModelEntry) -> list[Control]:
        """The tier's controls with the tier's threshold overrides applied."""
        tier = self.tier(model)
        result = []
        for control_id in tier.controls:
            control = self.catalog.controls[control_id]
            override = tier.thresholds.get(control_id)
            if override is not None:
                changes = override.model_dump(exclude_none=True)
                merged = Thresholds.model_validate(control.thresholds.model_dump() | changes)
                control = control.model_copy(update={"thresholds": merged})
            result.append(control)
        return result

    def controlled_models(self, tier: str | None = None) -> list[ModelEntry]:
        """Models in pilot or production, the ones production controls run on."""
        return [
            m
            for m in self.inventory.models.values()
            if m.stage in CONTROLLED_STAGES and (tier is None or m.tier == tier)
        ]

    def holders_of(self, model: ModelEntry, right: DecisionRight) -> set[str]:
        """Person ids who may take ``right`` decisions on ``model``, by role (DESIGN §1)."""
        roles = set(self.tier(model).decision_rights.roles_for(right))
        holders = {pid for role, pid in model.owners.assigned().items() if role in roles}
        global_roles = roles & set(GLOBAL_ROLES)
        holders |= {p.id for p in self.inventory.people.values() if global_roles & set(p.roles)}
        return holders
