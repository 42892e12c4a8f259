"""Ids as people type them: a unique prefix (``3f9c2a1b``, as the tables show) is enough."""

from __future__ import annotations

from collections.abc import Iterable

from prodcontrol.errors import UsageError
from prodcontrol.runtime import Runtime

MIN_PREFIX = 4


def resolve(given: str, known: Iterable[str], what: str, listing: str) -> str:
    """The one known id that is ``given`` or starts with it; otherwise a UsageError that says
    why (no such id, or which ids the prefix matches)."""
    text = given.strip()
    ids = list(dict.fromkeys(known))
    if text in ids:
        return text
    matches = [i for i in ids if text and i.startswith(text)]
    if len(matches) == 1 and len(text) >= MIN_PREFIX:
        return matches[0]
    if len(matches) == 1:
        raise UsageError(
            f"{what} id '{text}' is too short; give at least {MIN_PREFIX} characters "
            f"(it would be {matches[0]})"
        )
    if matches:
        shown = ", ".join(m[: len(text) + 4] + "…" for m in matches[:5])
        raise UsageError(
            f"{what} id '{text}' matches {len(matches)} {what}s ({shown}); give more characters"
        )
    raise UsageError(f"no {what} with id '{text}'; see `prodcontrol {listing}`")


def gate_id(rt: Runtime, given: str) -> str:
    return resolve(given, (g.id for g in rt.store.list_gates()), "gate", "gates list --status all")


def finding_id(rt: Runtime, given: str) -> str:
    return resolve(given, (f.id for f in rt.store.list_findings()), "finding", "gates list")


def waiver_id(rt: Runtime, given: str) -> str:
    return resolve(given, (w.id for w in rt.store.list_waivers()), "waiver", "waivers list --all")


def escalation_id(rt: Runtime, given: str) -> str:
    return resolve(
        given, (e.id for e in rt.store.list_escalations()), "escalation", "escalations list"
    )


def run_id(rt: Runtime, given: str) -> str:
    return resolve(given, (r.id for r in rt.store.list_runs()), "run", "evidence export")
