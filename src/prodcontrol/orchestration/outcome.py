"""What a flow run shows in Prefect's own UI: its final state, a table per control run, events.

The final state tells the outcome at a glance (DESIGN §10: results in Prefect's UI):

- ``Failed(name="Error")``: a model's run could not be done or a control gave ``error``;
- ``Failed(name="Blocked")``: a gate was rejected or expired, or a blocking finding has no
  approved gate;
- ``Completed(name="Findings")``: findings, none blocking (or their gate approved);
- ``Completed(name="Skipped")``: every model was already recorded in this schedule slot;
- ``Completed(name="Passed")``.

The message names the worst controls and the gates' outcomes. The flow's Python value stays the
report: :func:`report_of` reads it from the state whatever its type, so the CLI and tests get the
same report as before.

Events (``prodcontrol.finding.opened``, ``prodcontrol.gate.opened``, ``prodcontrol.gate.decided``)
let Prefect Automations react; they are emitted only where a Prefect API is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from prodcontrol.control.runs.checks import CheckResult, result_of
from prodcontrol.evidence.records import Gate
from prodcontrol.runtime import Runtime

log = logging.getLogger(__name__)

ORDER = ["not_applicable", "pass", "warn", "fail", "error"]
QUIET = ("not_applicable", "pass")
MAX_MESSAGE = 400
CLOSED_BAD = ("rejected", "expired")


def classify(results: Sequence[Any]) -> str:
    """``Error``, ``Blocked``, ``Findings``, ``Skipped`` or ``Passed`` for ModelResults."""
    if any(r.status == "failed" for r in results):
        return "Error"
    if results and all(r.status == "already recorded" for r in results):
        return "Skipped"  # the slot's first run already showed (and keeps) its outcome
    if any("error" in r.verdicts.values() for r in results):
        return "Error"
    if any(_blocked(r) for r in results):
        return "Blocked"
    if any(r.findings for r in results):
        return "Findings"
    return "Passed"


def _blocked(result: Any) -> bool:
    statuses = list(result.gate_status.values())
    if any(s in CLOSED_BAD for s in statuses):
        return True
    return bool(result.open_blocking) and "approved" not in statuses


def message(results: Sequence[Any], *, slot: str | None = None) -> str:
    """``2 of 3 models: fraud-7 drift fail, dq warn; gate g1 rejected``: the worst first."""
    bad = sorted(
        (r for r in results if r.status == "failed" or r.findings or r.gate_status),
        key=lambda r: -_rank(r),
    )
    parts = "; ".join(_describe(r) for r in bad)
    if classify(results) == "Skipped":
        where = f" in slot {slot}" if slot else ""
        text = f"every model was already recorded{where}: nothing run again"
        text += f"; as recorded: {parts}" if parts else ""
    elif not bad:
        text = f"{len(results)} model(s), every control passed"
    else:
        text = f"{len(bad)} of {len(results)} model(s): {parts}"
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def _rank(result: Any) -> int:
    if result.status == "failed":
        return len(ORDER)
    return max((ORDER.index(v) for v in result.verdicts.values() if v in ORDER), default=0)


def _describe(result: Any) -> str:
    if result.status == "failed":
        return f"{result.model} did not run ({result.error})"
    worst = sorted(
        ((c, v) for c, v in result.verdicts.items() if v not in QUIET),
        key=lambda cv: -ORDER.index(cv[1]) if cv[1] in ORDER else 0,
    )
    text = f"{result.model} " + ", ".join(f"{c} {v}" for c, v in worst[:3])
    if len(worst) > 3:
        text += f" (+{len(worst) - 3})"
    gates = ", ".join(f"gate {g} {s}" for g, s in result.gate_status.items())
    return f"{text}; {gates}" if gates else text


class ControlsFailed(Exception):
    """The result of a Failed run (Prefect wants an exception there); it carries the report."""

    def __init__(self, report: Any, outcome: str = "Blocked", text: str = "") -> None:
        super().__init__(report, outcome, text)
        self.report, self.outcome, self.text = report, outcome, text

    def __str__(self) -> str:
        return f"{self.outcome}: {self.text}"


def final_state(results: Sequence[Any], data: Any, *, slot: str | None = None) -> Any:
    """The flow run's final state, carrying ``data`` (the report) as its result."""
    from prefect.states import Completed, Failed

    outcome = classify(results)
    text = message(results, slot=slot)
    if outcome in ("Error", "Blocked"):
        return Failed(name=outcome, message=text, data=ControlsFailed(data, outcome, text))
    return Completed(name=outcome, message=text, data=data)


def report_of(state: Any) -> Any:
    """The report a flow run returned, whether its state is Completed or Failed.

    A run that failed before it could report (a configuration error) re-raises that error.
    """
    value = state.result(raise_on_failure=False)
    if isinstance(value, ControlsFailed):
        return value.report
    if isinstance(value, BaseException):
        raise value
    return value


# --------------------------------------------------------------------------- artifacts


def table_rows(rt: Runtime, result: CheckResult) -> list[dict[str, Any]]:
    """One row per control: verdict, value, thresholds, reason and the evidence link."""
    link = f"{rt.settings.web_base_url.rstrip('/')}/runs/{result.run_id}"
    return [
        {
            "control": v.control,
            "verdict": v.verdict,
            "value": None if v.value is None else round(v.value, 6),
            "threshold": v.threshold,
            "reason": v.reason,
            "evidence": link,
        }
        for v in result.verdicts
    ]


def publish_run_table(rt: Runtime, run: str | CheckResult) -> None:
    """A table artifact for one control run, under a key per model (its history in the UI)."""
    from prefect.artifacts import create_table_artifact

    result = result_of(rt, run) if isinstance(run, str) else run
    create_table_artifact(
        table=table_rows(rt, result),
        key=_artifact_key(result.model),
        description=(
            f"{result.model} v{result.version} ({result.tier} tier): {result.verdict}; "
            f"evidence {rt.settings.web_base_url.rstrip('/')}/runs/{result.run_id}"
        ),
    )


def _artifact_key(model: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in model.lower())
    return f"controls-{cleaned}".strip("-")


# --------------------------------------------------------------------------- events


def _emit(event: str, resource_id: str, payload: dict[str, Any], **labels: str) -> None:
    """Emit to the configured Prefect API; nothing where none is (no ephemeral server started)."""
    try:
        from prefect.events import emit_event
        from prefect.settings import PREFECT_API_URL

        if not PREFECT_API_URL.value() and not _in_flow_run():
            return

        emit_event(
            event=event,
            resource={"prefect.resource.id": resource_id, **labels},
            payload=payload,
        )
    except Exception as exc:  # events are a courtesy to Automations: never fail the run for one
        log.warning("could not emit Prefect event %s: %s", event, exc)


def _in_flow_run() -> bool:
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def emit_findings_opened(result: CheckResult) -> None:
    for finding in result.findings:
        if finding.status != "open":
            continue
        _emit(
            "prodcontrol.finding.opened",
            f"prodcontrol.finding.{finding.id}",
            {
                "model": result.model,
                "version": result.version,
                "control": finding.control,
                "verdict": finding.verdict,
                "severity": finding.severity,
                "blocking": finding.blocking,
                "run_id": result.run_id,
            },
            **{"prodcontrol.model": result.model, "prodcontrol.tier": result.tier},
        )


def emit_gate(gate: Gate, event: str) -> None:
    _emit(
        event,
        f"prodcontrol.gate.{gate.id}",
        {
            "model": gate.model,
            "version": gate.model_version,
            "status": gate.status,
            "required_approvals": gate.required_approvals,
            "flow_run_id": gate.flow_run_id,
        },
        **{"prodcontrol.model": gate.model},
    )
