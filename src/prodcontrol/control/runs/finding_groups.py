"""One control run, one decision: which findings a gate covers and which share one chain.

A run that yields several gating findings opens one finding gate (its ``finding_id`` is the
worst finding, ``context["findings"]`` lists them all) and one escalation chain. A later run of
the same model version while that gate is still pending adopts it: its blocking findings are
covered by the pending gate, so the people decide once for the version.

The rules here are pure functions over the evidence records, so the gate opener, the deciders,
the waivers and the escalation ticker all agree on the same grouping without storing it twice:

- a gate covers the findings listed in its context (``finding_id`` alone for older gates), and
  every blocking finding of the same model version opened while the gate was pending (strictly
  after it opened and before it closed);
- a finding's chain is its gate's chain when it (or another finding of its run) is covered by a
  gate; otherwise the chain of its run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from prodcontrol.evidence.records import Finding, Gate

VERDICT_RANK = {"error": 3, "fail": 2, "warn": 1, "pass": 0, "not_applicable": -1}
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    """Findings ordered worst first: blocking, verdict, severity, then control id (stable).

    Blocking first, so the worst finding of a run is the one its gate is opened on and its
    chain is keyed by, before and after the gate exists.
    """
    return sorted(
        findings,
        key=lambda f: (
            not f.blocking,
            -VERDICT_RANK.get(f.verdict, 0),
            -SEVERITY_RANK.get(f.severity, 0),
            f.control_id,
            f.id,
        ),
    )


def listed(gate: Gate) -> list[str]:
    """The finding ids a gate names: ``context["findings"]``, else its ``finding_id``."""
    ids = gate.context.get("findings")
    if isinstance(ids, list) and ids:
        return [str(i) for i in ids]
    return [gate.finding_id] if gate.finding_id else []


def _pending_at(gate: Gate, finding: Finding) -> bool:
    if gate.kind != "finding" or not finding.blocking:
        return False
    if (gate.model, gate.model_version) != (finding.model, finding.model_version):
        return False
    if gate.opened_at >= finding.opened_at:
        return False  # opened before the gate: its own run's, listed in a context if covered
    return gate.decided_at is None or gate.decided_at > finding.opened_at


def gates_by_finding(gates: Sequence[Gate], findings: Sequence[Finding]) -> dict[str, Gate]:
    """The gate that covers each finding (finding id -> gate), for the findings given.

    A gate naming the finding wins (the newest if several do); otherwise the oldest finding
    gate of the same model version that was pending when the finding opened (adoption).
    """
    ordered = sorted((g for g in gates if g.kind == "finding"), key=lambda g: g.opened_at)
    found: dict[str, Gate] = {}
    for gate in ordered:
        for finding_id in listed(gate):
            found[finding_id] = gate
    for finding in findings:
        if finding.id in found:
            continue
        adopting = next((g for g in ordered if _pending_at(g, finding)), None)
        if adopting is not None:
            found[finding.id] = adopting
    return found


def covered(gate: Gate, findings: Sequence[Finding], gates: Sequence[Gate]) -> list[Finding]:
    """The findings (of those given) a gate covers, worst first."""
    mapping = gates_by_finding(gates, findings)
    return worst_first(
        f for f in findings if mapping.get(f.id) is not None and mapping[f.id].id == gate.id
    )


def chain_groups(
    findings: Sequence[Finding], gates: Sequence[Gate]
) -> dict[str, tuple[Gate | None, list[Finding]]]:
    """Findings grouped by chain: key ``gate:<id>`` or ``run:<id>`` -> (gate, findings worst first).

    A finding not covered by a gate joins the gate of another finding of its run, if any (so a
    run's non-blocking findings ride on the run's one chain).
    """
    mapping = gates_by_finding(gates, findings)
    run_gate: dict[str, Gate] = {}
    for finding in findings:
        gate = mapping.get(finding.id)
        if gate is not None:
            run_gate.setdefault(finding.run_id, gate)
    groups: dict[str, list[Finding]] = defaultdict(list)
    gate_of: dict[str, Gate | None] = {}
    for finding in findings:
        gate = mapping.get(finding.id) or run_gate.get(finding.run_id)
        key = f"gate:{gate.id}" if gate is not None else f"run:{finding.run_id}"
        groups[key].append(finding)
        gate_of[key] = gate
    return {key: (gate_of[key], worst_first(members)) for key, members in groups.items()}
