"""``serving-version-approved``: the version behind the serving alias must have been approved.

Approved means the MLflow tag ``prodcontrol.approved=true`` on the version, or an approved
promotion gate for that version in the evidence store (unless the tag was set to ``false``
since, as a rollback does). A serving alias moved by hand in MLflow to any other version is a
failing control: deployment outside the gates is detected, not just discouraged.

The check runner measures it on every tier; an MLflow webhook (``model_version_alias.created``)
can call :func:`approval_of` to re-evaluate it the moment an alias moves.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from prodcontrol.evidence.port import EvidenceStore
from prodcontrol.ports import ModelVersionRef

APPROVED_TAG = "prodcontrol.approved"


class Approval(BaseModel):
    """Whether a version was approved, and by what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    version: str
    approved: bool
    by: str  # "tag", "promotion gate <id>", or why not

    @property
    def value(self) -> float:
        """The control's measured value: 0 approved, 1 not (``fail: 1`` in controls.yaml)."""
        return 0.0 if self.approved else 1.0


def approval_of(store: EvidenceStore, model: str, version: ModelVersionRef) -> Approval:
    """How ``version`` of ``model`` was approved, or why it was not."""
    tag = version.tags.get(APPROVED_TAG)
    if tag == "true":
        return Approval(model=model, version=version.version, approved=True, by="tag")
    if tag != "false":
        for gate in store.list_gates(status="approved", model=model):
            if gate.kind == "promotion" and gate.model_version == version.version:
                by = f"promotion gate {gate.id}"
                return Approval(model=model, version=version.version, approved=True, by=by)
    why = (
        f"version {version.version} had its approval withdrawn ({APPROVED_TAG}=false)"
        if tag == "false"
        else f"version {version.version} has neither {APPROVED_TAG}=true nor an approved "
        "promotion gate: the serving alias was moved outside the gates"
    )
    return Approval(model=model, version=version.version, approved=False, by=why)
