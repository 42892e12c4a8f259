"""The framework view: clause -> controls -> runs in the period -> outcome; clauses without
evidence in the period are gaps.

Pure: the catalog says which controls serve which clause (``FRAMEWORK:CLAUSE`` in each control's
``clauses``); the store's runs and verdicts say what happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import Field

from prodcontrol.catalog.loader import Catalog
from prodcontrol.errors import UsageError
from prodcontrol.evidence.records import ControlRun, Record, Verdict

ORDER = {"not_applicable": -1, "pass": 0, "warn": 1, "fail": 2, "error": 3}
NO_EVIDENCE = "no evidence"


class ClauseRow(Record):
    framework: str
    clause: str
    title: str
    controls: list[str]
    models: list[str] = Field(default_factory=list, description="models with runs in the period")
    runs: int
    verdicts: dict[str, int] = Field(default_factory=dict, description="count per verdict")
    outcome: str = Field(description="the worst verdict in the period, or 'no evidence'")
    gap: bool


def framework_ids(catalog: Catalog) -> list[str]:
    return sorted(catalog.frameworks)


def check_framework(catalog: Catalog, framework: str) -> None:
    if framework not in catalog.frameworks:
        known = ", ".join(framework_ids(catalog))
        raise UsageError(f"unknown framework {framework!r}; the catalog has: {known}")


def framework_view(
    catalog: Catalog,
    framework: str,
    results: Iterable[tuple[ControlRun, Sequence[Verdict]]],
) -> list[ClauseRow]:
    """One row per clause of ``framework``, in catalog order, from the runs of the period."""
    check_framework(catalog, framework)
    serving: dict[str, list[str]] = {}
    for control in catalog.controls.values():
        for ref in control.clauses:
            fw, _, clause_id = ref.partition(":")
            if fw == framework:
                serving.setdefault(clause_id, []).append(control.id)
    runs: dict[str, set[str]] = {}
    models: dict[str, set[str]] = {}
    counts: dict[str, dict[str, int]] = {}
    pairs = list(results)
    for clause_id, controls in serving.items():
        wanted = set(controls)
        for run, verdicts in pairs:
            for verdict in verdicts:
                if verdict.control_id in wanted:
                    runs.setdefault(clause_id, set()).add(run.id)
                    models.setdefault(clause_id, set()).add(run.model)
                    bucket = counts.setdefault(clause_id, {})
                    bucket[verdict.verdict] = bucket.get(verdict.verdict, 0) + 1
    rows = []
    for clause in catalog.frameworks[framework].clauses:
        seen = counts.get(clause.id, {})
        worst = max(seen, key=lambda v: ORDER.get(v, 0)) if seen else NO_EVIDENCE
        rows.append(
            ClauseRow(
                framework=framework,
                clause=clause.id,
                title=clause.title,
                controls=sorted(serving.get(clause.id, [])),
                models=sorted(models.get(clause.id, set())),
                runs=len(runs.get(clause.id, set())),
                verdicts=dict(sorted(seen.items(), key=lambda kv: ORDER.get(kv[0], 0))),
                outcome=worst,
                gap=not seen,
            )
        )
    return rows
