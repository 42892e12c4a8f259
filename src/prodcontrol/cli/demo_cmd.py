"""``prodcontrol demo``: the end-to-end story that ``make demo`` tells, on embedded defaults.

Local MLflow store (SQLite under the state dir), SQLite evidence, Prefect's ephemeral API, and
Slack messages printed from the outbox. Nothing leaves the machine.

1. validate the catalog and the example inventory;
2. seed MLflow with the three example models (versions, metrics, the ``champion`` alias);
3. run each model's tier control flow on Prefect;
4. medium tier: the finding is accepted with a time-boxed waiver by the exception-right holder;
5. high tier: a two-person gate opens and escalates; one owner approves, the model-behaviour
   owner is refused by separation of duties, nobody else decides, the gate times out and the
   tier's timeout action rolls the model back in MLflow;
6. summary, evidence check, and what to try next.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from prodcontrol.cli.output import console, emit
from prodcontrol.clock import ShiftedClock
from prodcontrol.errors import DecisionRefused, UsageError
from prodcontrol.runtime import Runtime
from prodcontrol.settings import Settings, load_settings

MARKER = ".prodcontrol-demo"
COLOURS = {
    "not_applicable": "dim",
    "pass": "green",
    "warn": "yellow",
    "fail": "red",
    "error": "bold red",
}
DEMO_FILES = (
    "evidence.db",
    "mlflow.db",
    "mlartifacts",
    "artifacts",
    "outbox.txt",
    "anchors",
    "anchors.jsonl",
    "evidence-signing.key",
    "evidence-signing.key.pub",
)


def demo(
    inventory: Path = typer.Option(Path("examples"), "--inventory", help="Inventory to use."),
    keep: bool = typer.Option(
        False, "--keep", help="Keep the evidence of an earlier demo instead of starting afresh."
    ),
    history: int = typer.Option(
        30,
        "--history",
        min=0,
        max=400,
        metavar="DAYS",
        help="Run the loop over this many past days first (simulated clock), so the charts "
        "and the operating review show trends; 0 skips it.",
    ),
) -> None:
    """Run the whole story on the example models: controls, waiver, gate, escalation, rollback."""
    started = time.monotonic()
    settings = load_settings(inventory_dir=inventory)
    _fresh_state(settings, keep)
    settings = _demo_evidence(settings)
    from prodcontrol.cli.flow_cmds import _quiet_prefect

    _quiet_prefect()
    rt = Runtime(settings)
    _step_validate(rt)
    _step_seed(rt)
    if history:
        _step_history(rt, history)
    results = _step_flows(rt)
    _drain(rt, "what owners were sent")
    _step_waiver(rt, results)
    _step_gate(rt, results)
    _step_summary(rt, results)
    _step_next(rt.settings, time.monotonic() - started)


# --------------------------------------------------------------------------- steps


def _fresh_state(settings: Settings, keep: bool) -> None:
    """Start from a clean embedded state, but never delete evidence the demo did not create."""
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    marker = state / MARKER
    others = [p for p in state.iterdir() if p.name != MARKER]
    if others and not marker.exists():
        raise UsageError(
            f"{state} holds files the demo did not create; run the demo with another state dir "
            "(PRODCONTROL_STATE_DIR=/tmp/pc-demo make demo) so nothing of yours is touched"
        )
    if not keep:
        for name in DEMO_FILES:
            path = state / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    marker.write_text("created by `prodcontrol demo`; the demo may reset this directory\n")


def _demo_evidence(settings: Settings) -> Settings:
    """Sign and anchor the demo's evidence with a key and an anchor file in its state dir.

    Only the demo does this: in production the key and the anchor file live where the
    database operator cannot write (README, 'Evidence that holds against its own operator').
    """
    from prodcontrol.evidence.signing import SigningKey

    state = settings.state_path
    update: dict[str, Any] = {}
    if settings.evidence_signing_key is None:
        key_path = state / "evidence-signing.key"
        if not key_path.exists():
            SigningKey.generate().write(key_path)
        update["evidence_signing_key"] = str(key_path)
    if settings.evidence_anchor_file is None:
        update["evidence_anchor_file"] = state / "anchors.jsonl"
    return settings.model_copy(update=update)


def _step_validate(rt: Runtime) -> None:
    from prodcontrol.cli.catalog_cmds import model_rows, summarize

    console.rule("[bold]1. Validate the control catalog and the inventory")
    counts = summarize(rt.config)
    console.print(
        f"valid: {counts['controls']} controls, {counts['tiers']} tiers, "
        f"{counts['clauses']} framework clauses, {counts['models']} models, "
        f"{counts['people']} people"
    )
    rows = model_rows(rt.config)
    for row in rows:
        row["owners"] = f"{5 - len(row['missing_roles'])}/5"
    emit(rows, as_json=False, columns=["model", "tier", "stage", "owners", "readiness"])


def _step_seed(rt: Runtime) -> None:
    from prodcontrol.testing.seed import seed_mlflow

    console.rule("[bold]2. Seed the local MLflow registry")
    with warnings.catch_warnings(), console.status("registering models, runs and datasets…"):
        # MLflow's hints about dataset sources and integer columns are for authors, not here
        warnings.simplefilter("ignore")
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        report = seed_mlflow(rt.settings.resolved_tracking_uri, rt.config)
    rows = [
        {
            "model": m.model,
            "serving version": m.serving_version,
            "approved versions": m.approved_versions,
            "baseline metric": m.metric,
            "approved value": _num(m.approved_value),
            "latest value": _num(m.production_value),
        }
        for m in report.models
    ]
    emit(rows, as_json=False)
    console.print(f"MLflow tracking store: {rt.settings.resolved_tracking_uri}")


def _step_history(rt: Runtime, days: int) -> None:
    from prodcontrol.control.reports.demo_history import history_runtime, simulate

    console.rule(f"[bold]2b. The last {days} days, on a simulated clock")
    started = time.monotonic()
    past, clock, end = history_runtime(rt, days)
    with warnings.catch_warnings(), console.status("running the daily controls…") as status:
        warnings.simplefilter("ignore")
        report = simulate(past, days, clock=clock, end=end, progress=status.update)
    console.print(
        f"{report.runs} scheduled runs over {days} days: {report.findings} finding(s), "
        f"{report.acknowledged} acknowledgement(s), {report.decisions} decision(s), "
        f"{report.expired} gate(s) timed out, in {time.monotonic() - started:.0f} s; the drift "
        "rises as the current data comes in"
    )
    console.print(f"[dim]messages of those days are in {rt.settings.outbox_file}[/]")


def _step_flows(rt: Runtime) -> dict[str, Any]:
    from prodcontrol.orchestration.flows import run_control
    from prodcontrol.orchestration.runtimes import register

    console.rule("[bold]3. Run each model's tier control flow on Prefect (ephemeral API)")
    ref = register(rt)
    results: dict[str, Any] = {}
    for entry in rt.config.controlled_models(None):
        with console.status(f"controls for {entry.name} ({entry.tier} tier)…"):
            result = run_control(entry.name, runtime=ref, wait_for_gates=False)
        results[entry.name] = result
        _print_verdicts(rt, result)
    return results


def _print_verdicts(rt: Runtime, result: Any) -> None:
    rows = []
    for verdict in rt.store.verdicts_for(result.run_id) if result.run_id else []:
        rows.append(
            {
                "control": verdict.control_id,
                "verdict": f"[{COLOURS[verdict.verdict]}]{verdict.verdict}[/]",
                "value": _num(verdict.value),
                "warn": _num(verdict.warn),
                "fail": _num(verdict.fail),
                "unit": _unit(rt, verdict.control_id),
            }
        )
    title = (
        f"{result.model} v{result.model_version} ({result.tier} tier): "
        f"{result.findings} finding(s), {result.blocking} blocking, gates {len(result.gates)}"
    )
    emit(rows, as_json=False, title=title)


def _unit(rt: Runtime, control_id: str) -> str:
    control = rt.config.catalog.controls.get(control_id)
    return control.thresholds.unit if control is not None else ""


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("-" if value is None else str(value))


def _step_waiver(rt: Runtime, results: dict[str, Any]) -> None:
    from prodcontrol.control.gates import waivers

    console.rule("[bold]4. Medium tier: accept the finding with a time-boxed waiver")
    medium = _model_of_tier(rt, results, "medium")
    if medium is None:
        console.print("no medium-tier model had a finding; nothing to waive")
        return
    found = rt.store.list_findings(model=medium, status="open")
    latest = max(found, key=lambda f: f.opened_at).run_id if found else None
    # the latest run's warnings: an error (a control that could not run) is never waived
    findings = [f for f in found if f.run_id == latest and f.verdict != "error"]
    if not findings:
        console.print(f"{medium} has no open finding to waive")
        return
    tier = rt.config.tier(rt.config.model(medium))
    approver = _signed_in(rt, _holder(rt, medium, "exception")).person
    for finding in findings:
        waiver = waivers.grant(
            rt,
            finding.id,
            approver=approver,
            reason="known seasonal shift in applicant income; retraining is scheduled",
            valid_for=min(timedelta(days=14), tier.waiver_max),
        )
        console.print(
            f"waiver {waiver.id[:8]} by [bold]{approver}[/] on {medium} / {finding.control_id} "
            f"({finding.verdict}) until {waiver.expires_at:%Y-%m-%d}; the next run re-opens it "
            "after expiry"
        )


_tokens: dict[str, str] = {}


def _signed_in(rt: Runtime, person: str) -> Any:
    """The demo's people decide with their own personal tokens, as PRODCONTROL_TOKEN would.

    The first use bootstraps the mlops_admin's token; the admin then issues everyone else's.
    """
    from prodcontrol.identity import service as identity

    if not _tokens or not rt.identity.list_tokens():
        _tokens.clear()
        admin = next(
            p.id for p in rt.config.inventory.people.values() if identity.ADMIN_ROLE in p.roles
        )
        _tokens[admin] = identity.issue(rt, admin, by=None, bootstrap=True).text
        console.print(f"personal token issued to {admin} (mlops_admin, --bootstrap)")
    if person not in _tokens:
        admin_actor = identity.authenticate(rt, next(iter(_tokens.values())))
        _tokens[person] = identity.issue(rt, person, by=admin_actor, expires_days=1).text
        console.print(f"personal token issued to {person} by {admin_actor.person}")
    return identity.authenticate(rt, _tokens[person])


def _step_gate(rt: Runtime, results: dict[str, Any]) -> None:
    from prodcontrol.control.escalation import escalation
    from prodcontrol.control.gates import decisions

    console.rule("[bold]5. High tier: two-person gate, escalation, separation of duties, timeout")
    high = _model_of_tier(rt, results, "high")
    gates = rt.store.list_gates(status="pending", model=high) if high else []
    if high is None or not gates:
        console.print("no high-tier gate opened; nothing to decide")
        return
    gate = gates[0]
    entry = rt.config.model(high)
    console.print(
        f"gate {gate.id[:8]} on {high} v{gate.model_version}: needs "
        f"{gate.required_approvals} approvals by holders of '{gate.right}'; "
        f"times out at {gate.due_at:%H:%M} UTC with action '{gate.on_timeout}'"
    )
    owners = entry.owners.assigned()
    first = _signed_in(rt, owners["operating_risk"])
    requester = owners["model_behaviour"]
    decisions.decide(
        rt,
        gate.id,
        person=first.person,
        decision="approve",
        channel="cli",
        reason="drift explained by the holiday campaign",
        credential=first.credential,
    )
    console.print(f"[green]approved[/] by {first.person} (1 of {gate.required_approvals})")
    try:
        decisions.decide(
            rt,
            gate.id,
            person=requester,
            decision="approve",
            channel="slack",
            credential=f"slack:{rt.config.inventory.people[requester].slack_id}",
            reason="the drift looks seasonal to me",
        )
    except DecisionRefused as exc:
        console.print(f"[red]refused[/] {requester}: {exc}")
    _fast_forward(rt, gate, escalation, decisions)


def _fast_forward(rt: Runtime, gate: Any, escalation: Any, decisions: Any) -> None:
    """Nobody else decides: move the clock past the gate's timeout, as the scheduler would."""
    assert gate.due_at is not None
    ahead = gate.due_at - rt.clock.now() + timedelta(minutes=1)
    later = Runtime(rt.settings, ShiftedClock(rt.clock, ahead), config=rt.config)
    console.print(f"[dim]… {ahead.total_seconds() / 3600:.1f} hours later (simulated clock)[/]")
    ticked = escalation.tick(later)
    console.print(f"escalation tick: {ticked.as_dict()}")
    _drain(later, "escalation steps sent while nobody decided")
    before = _alias(later, gate.model)
    expired = decisions.expire_due_gates(later)
    after = _alias(later, gate.model)
    for closed in expired:
        console.print(f"gate {closed.id[:8]} {closed.status}: timeout action '{closed.on_timeout}'")
    console.print(
        f"MLflow alias {gate.model}@champion: version {before} -> version {after}"
        + (" [bold red](rolled back)[/]" if before != after else "")
    )
    _drain(later, "the decided gate updates the earlier messages")


def _alias(rt: Runtime, model: str) -> str:
    entry = rt.config.model(model)
    try:
        return rt.registry.resolve_alias(model, entry.serving_alias).version  # type: ignore[attr-defined,no-any-return]
    except UsageError:
        return "none"


def _drain(rt: Runtime, title: str) -> None:
    from prodcontrol.adapters.slack import OutboxFileNotifier
    from prodcontrol.control.escalation.outbox import OutboxSender

    notifier = OutboxFileNotifier(rt.settings.outbox_file, echo=_echo)
    console.rule(f"[dim]Slack outbox: {title}", style="dim")
    sender = OutboxSender(rt.store, notifier, rt.clock, workers=1)
    try:
        report = sender.drain()
    finally:
        sender.close()
    console.print(f"[dim]{report.sent} message(s) delivered to {rt.settings.outbox_file}[/]")


def _echo(text: str) -> None:
    console.print(text, markup=False, highlight=False)


def _step_summary(rt: Runtime, results: dict[str, Any]) -> None:
    console.rule("[bold]6. Summary")
    rows = []
    for name, result in results.items():
        gates = rt.store.list_gates(model=name)
        actions = rt.store.list_actions(model=name)
        rows.append(
            {
                "model": name,
                "tier": result.tier,
                "worst": _worst(result.verdicts),
                "findings": result.findings,
                "waived": len(rt.store.list_waivers(model=name)),
                "gate": _tally(g.status for g in gates),
                "action": _tally(a.action for a in actions),
                "champion": f"v{_alias(rt, name)}",
            }
        )
    emit(rows, as_json=False)
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks
    from prodcontrol.cli.evidence_cmds import verify_policy
    from prodcontrol.control.runs.anchoring import anchor_if_due
    from prodcontrol.evidence.integrity import verify_evidence

    anchor_if_due(rt, force=True)  # runs and ticks anchored already; this covers the last steps
    sinks = anchor_sinks(rt.settings)
    report = verify_evidence(rt.store, sinks, rt.trusted_keys(), verify_policy(rt))
    state = "[green]intact[/]" if report.ok else "[red]BROKEN[/]"
    console.print(
        f"evidence {state}: {report.chain.count} "
        f"chain entries, {report.rows_checked} rows and {report.artifacts_checked} report files "
        "re-hashed" + (f"; first broken: {report.first_broken}" if report.first_broken else "")
    )
    newest = ", ".join(f"entry {seq} in {name}" for name, seq in report.newest_anchor.items())
    console.print(
        f"{report.signing.summary}; {report.signing.signatures_checked} signed heads checked; "
        f"anchored: {newest or 'no sink'}"
    )
    console.print(
        "[dim]demo only: the signing key and the anchor file are in the state dir; in "
        "production keep both where the database operator cannot write[/]"
    )


def _tally(values: Iterable[str]) -> str:
    counts = Counter(values)
    return ", ".join(f"{n} {v}" for v, n in counts.items()) or "-"


def _worst(verdicts: dict[str, str]) -> str:
    order = ["not_applicable", "pass", "warn", "fail", "error"]
    return max(verdicts.values(), key=order.index, default="-")


def _step_next(settings: Settings, seconds: float) -> None:
    console.rule("[bold]What to try next")
    console.print(f"demo finished in {seconds:.0f} s; evidence in {settings.state_path}")
    if _tokens:
        saved = settings.state_path / "demo-tokens.json"
        saved.touch(mode=0o600)
        saved.write_text(json.dumps(_tokens, indent=1) + "\n", encoding="utf-8")
        console.print(f"the demo people's personal tokens: {saved} (only yours in real life)")
        console.print("decide as one: export PRODCONTROL_TOKEN=<token>; web: sign in at /login")
    console.print("with `source .venv/bin/activate` first (or prefix .venv/bin/), and the demo's")
    console.print("signing key and anchor file (so later commands sign and check them too):")
    console.print(
        f"  export PRODCONTROL_EVIDENCE_SIGNING_KEY={settings.evidence_signing_key}",
        markup=False,
        highlight=False,
    )
    console.print(
        f"  export PRODCONTROL_EVIDENCE_ANCHOR_FILE={settings.evidence_anchor_file}",
        markup=False,
        highlight=False,
    )
    for line in (
        "gates list                  # what waits on people",
        "waivers list                # accepted findings, soonest expiry first",
        "check fraud-detector        # one model's controls, no scheduler",
        "evidence verify             # re-hash the chain and the reports",
        "evidence export --out p.zip # offline evidence pack for reviewers",
        "serve                       # fleet and model pages, 127.0.0.1:8000",
        "report operating-review --period YYYY-MM --out review.html",
    ):
        console.print(f"  prodcontrol {line}", markup=False, highlight=False)


def _model_of_tier(rt: Runtime, results: dict[str, Any], tier: str) -> str | None:
    return next((name for name, r in results.items() if r.tier == tier), None)


def _holder(rt: Runtime, model: str, right: str) -> str:
    holders = rt.config.holders_of(rt.config.model(model), right)  # type: ignore[arg-type]
    if not holders:
        raise UsageError(f"nobody holds the '{right}' right for {model}; see tiers.yaml")
    return sorted(holders)[0]


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
