"""The evidence browser: fleet, model, run and framework pages, reports, packs and gate decisions.

Read-only for everyone authenticated. The one write is a decision on a gate, offered only to a
person who holds the gate's right and sent through
:func:`prodcontrol.control.gates.decisions.decide`, the same function the CLI and Slack use.
"""

from __future__ import annotations

import gzip
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from prodcontrol.adapters.evidently_snapshot import is_snapshot
from prodcontrol.catalog.schema import ModelEntry
from prodcontrol.catalog.types import DecisionRight
from prodcontrol.clock import ensure_utc
from prodcontrol.control.gates.decisions import who_could_decide
from prodcontrol.control.reports import charts
from prodcontrol.errors import DecisionRefused, ProdControlError, UsageError
from prodcontrol.evidence.frameworks import check_framework, framework_ids, framework_view
from prodcontrol.evidence.integrity import ArtifactChanged, VerifiedFile, read_verified
from prodcontrol.evidence.records import Artifact, ControlRun, Gate, Verdict
from prodcontrol.runtime import Runtime
from prodcontrol.web.auth import Viewer
from prodcontrol.web.deps import get_runtime
from prodcontrol.web.render import TEMPLATES, render
from prodcontrol.web.report_view import PAGES
from prodcontrol.web.session import Signer

router = APIRouter()
Rt = Annotated[Runtime, Depends(get_runtime)]
RUNS_SHOWN = 100
WAIVER_WARNING = timedelta(days=14)


def viewer_of(request: Request) -> Viewer:
    return cast(Viewer, request.state.viewer)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, viewer=viewer_of(request), **context), status_code=status)


def message_page(
    request: Request, heading: str, message: str, status: int, back: str = ""
) -> HTMLResponse:
    return page(request, "message.html", status, heading=heading, message=message, back=back)


@router.get("/static/style.css", include_in_schema=False)
def style() -> FileResponse:
    return FileResponse(TEMPLATES / "style.css", media_type="text/css")


# --------------------------------------------------------------------------- fleet


@router.get("/", response_class=HTMLResponse)
def fleet(request: Request, rt: Rt) -> HTMLResponse:
    config, store, now = rt.config, rt.store, rt.clock.now()
    people = config.inventory.people
    rows = []
    for entry in sorted(config.inventory.models.values(), key=lambda m: m.name):
        waivers = [
            w
            for w in store.list_waivers(model=entry.name, active_at=now)
            if w.expires_at - now <= WAIVER_WARNING
        ]
        rows.append(
            {
                "name": entry.name,
                "description": entry.description,
                "tier": entry.tier,
                "stage": entry.stage,
                "owners": {
                    role: people[pid].name if pid in people else pid
                    for role, pid in entry.owners.assigned().items()
                },
                "verdicts": {v.control_id: v.verdict for v in store.latest_verdicts(entry.name)},
                "open_findings": len(store.list_findings(model=entry.name, status="open")),
                "pending_gates": len(store.list_gates(status="pending", model=entry.name)),
                "waivers": waivers,
            }
        )
    return page(request, "fleet.html", rows=rows, now=now, heatmap=_heatmap(rt, rows))


def _heatmap(rt: Runtime, rows: list[dict[str, Any]]) -> str:
    """Models x controls, each cell the latest verdict (blank: not in the tier or not run yet)."""
    controls = sorted(
        {c.id for m in rt.config.inventory.models.values() for c in rt.config.controls_for(m)}
    )
    cells = {
        (row["name"], control): verdict
        for row in rows
        for control, verdict in row["verdicts"].items()
    }
    return charts.verdict_heatmap(
        "Latest verdict per model and control", [r["name"] for r in rows], controls, cells
    )


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    what: str
    detail: str


def _plots(
    rt: Runtime, entry: ModelEntry, runs: list[tuple[ControlRun, list[Verdict]]]
) -> list[str]:
    plots = []
    for control in rt.config.controls_for(entry):
        points = [
            charts.Point(run.started_at, v.value, v.verdict)
            for run, verdicts in runs
            for v in verdicts
            if v.control_id == control.id
        ]
        t = control.thresholds
        plots.append(
            charts.score_plot(f"{control.id}: {control.title}", points, t.warn, t.fail, t.unit)
        )
    return plots


def _timeline(rt: Runtime, model: str, gates: list[Gate]) -> list[TimelineItem]:
    store = rt.store
    items = []
    for gate in gates:
        items.append(
            TimelineItem(gate.opened_at, f"gate opened ({gate.kind})", f"needs {gate.right}")
        )
        for d in store.decisions_for(gate.id):
            items.append(
                TimelineItem(
                    d.decided_at,
                    f"decision: {d.decision}",
                    f"{d.person} via {d.channel}: {d.reason}",
                )
            )
        if gate.decided_at is not None:
            items.append(TimelineItem(gate.decided_at, f"gate {gate.status}", gate.id))
    for e in store.list_escalations():
        if e.model != model:
            continue
        items.append(TimelineItem(e.started_at, "escalation started", f"tier {e.tier}"))
        if e.acknowledged_at is not None:
            items.append(
                TimelineItem(e.acknowledged_at, "escalation acknowledged", str(e.acknowledged_by))
            )
        if e.closed_at is not None:
            items.append(TimelineItem(e.closed_at, f"escalation {e.status}", f"at step {e.step}"))
    for a in store.list_actions(model=model):
        items.append(
            TimelineItem(a.created_at, f"action: {a.action}", f"{a.status}, by {a.requested_by}")
        )
    for w in store.list_waivers(model=model):
        items.append(
            TimelineItem(
                w.granted_at,
                "waiver granted",
                f"{w.control_id} by {w.approver} until {w.expires_at:%Y-%m-%d}: {w.reason}",
            )
        )
    return sorted(items, key=lambda i: ensure_utc(i.at), reverse=True)


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(
    request: Request, name: str, rt: Rt, message: str = "", ok: bool = True
) -> HTMLResponse:
    try:
        entry = rt.config.model(name)
    except UsageError as exc:
        return message_page(request, "Unknown model", str(exc), 404, "/")
    from prodcontrol.control.lifecycle import incidents

    store = rt.store
    runs = [(r, store.verdicts_for(r.id)) for r in store.list_runs(model=name)[-RUNS_SHOWN:]]
    gates = store.list_gates(model=name)
    viewer = viewer_of(request)
    signer: Signer = request.app.state.signer
    gate_rows = []
    for gate in sorted(gates, key=lambda g: (g.status != "pending", g.opened_at)):
        holders = sorted(rt.config.holders_of(entry, cast(DecisionRight, gate.right)))
        could = who_could_decide(rt, gate) if gate.status == "pending" else []
        gate_rows.append(
            {
                "gate": gate,
                "decisions": store.decisions_for(gate.id),
                "holders": holders,
                "may_decide": viewer.person is not None and viewer.person in could,
            }
        )
    return page(
        request,
        "model.html",
        model=entry,
        plots=_plots(rt, entry, runs),
        gates=gate_rows,
        incidents=incidents.list_incidents(rt, name),
        timeline=_timeline(rt, name, gates),
        runs=[{"run": r, "verdicts": v} for r, v in reversed(runs)],
        csrf=signer.csrf_token(viewer.csrf_binding, rt.clock.now()) if viewer.person else "",
        message=message,
        ok=ok,
    )


# --------------------------------------------------------------------------- runs and reports


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, rt: Rt) -> HTMLResponse:
    try:
        run = rt.store.get_run(run_id)
    except UsageError as exc:
        return message_page(request, "Unknown run", str(exc), 404, "/")
    artifacts = rt.store.artifacts_for(run_id)
    return page(
        request,
        "run.html",
        run=run,
        verdicts=rt.store.verdicts_for(run_id),
        artifacts=artifacts,
        snapshots={a.id for a in artifacts if is_snapshot(a.name, a.media_type)},
    )


@router.get("/runs/{run_id}/artifacts/{artifact_id}")
def artifact(
    request: Request, run_id: str, artifact_id: str, rt: Rt, raw: bool = False
) -> Response:
    """The report file, only if it still has the SHA-256 the log recorded for it. The bytes
    checked are the bytes served or rendered (read once). A stored Evidently snapshot is
    rendered to its HTML page (``raw=1``: the stored file itself, to download)."""
    found = [a for a in rt.store.artifacts_for(run_id) if a.id == artifact_id]
    if not found:
        return message_page(
            request, "Unknown report", f"run {run_id} has no artifact {artifact_id}", 404
        )
    try:
        verified = read_verified(found[0])
    except ArtifactChanged as exc:
        return message_page(request, "Report no longer matches the evidence", str(exc), 409)
    return _served(request, found[0], verified, raw=raw)


def _served(request: Request, found: Artifact, verified: VerifiedFile, *, raw: bool) -> Response:
    headers = {"Content-Security-Policy": "sandbox allow-scripts"}
    if raw:
        headers["Content-Disposition"] = f'attachment; filename="{quote(found.name)}"'
        return Response(verified.data, media_type="application/octet-stream", headers=headers)
    if is_snapshot(found.name, found.media_type):
        try:
            page_gz = PAGES.page(verified)
        except ValueError as exc:
            return message_page(request, "Cannot render the report", str(exc), 500)
        return _gzipped(request, page_gz, "text/html; charset=utf-8", headers)
    if found.path.endswith(".gz"):  # runs before on-demand rendering stored the HTML .gz
        return _gzipped(request, verified.data, found.media_type, headers)
    return Response(verified.data, media_type=found.media_type, headers=headers)


def _gzipped(request: Request, data: bytes, media_type: str, headers: dict[str, str]) -> Response:
    """Gzip-compressed bytes, sent as they are to a client that accepts gzip (every browser)."""
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        return Response(data, media_type=media_type, headers=headers | {"Content-Encoding": "gzip"})
    return Response(gzip.decompress(data), media_type=media_type, headers=headers)


# --------------------------------------------------------------------------- frameworks and packs


@router.get("/frameworks", response_class=HTMLResponse)
def frameworks_page(request: Request, rt: Rt, framework: str = "eu-ai-act") -> HTMLResponse:
    from prodcontrol.evidence.period import period

    catalog = rt.config.catalog
    params = request.query_params
    start_text, end_text = params.get("from") or None, params.get("to") or None
    try:
        check_framework(catalog, framework)
        start, end = period(start_text, end_text)
    except UsageError as exc:
        return message_page(request, "Cannot show that", str(exc), 400, "/frameworks")
    runs = rt.store.list_runs(since=start, until=end)
    rows = framework_view(catalog, framework, [(r, rt.store.verdicts_for(r.id)) for r in runs])
    return page(
        request,
        "frameworks.html",
        title=catalog.frameworks[framework].title,
        framework=framework,
        frameworks=framework_ids(catalog),
        rows=rows,
        since=start_text,
        until=end_text,
    )


@router.get("/pack.zip")
def pack(request: Request, rt: Rt, model: str | None = None) -> Response:
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks
    from prodcontrol.evidence.integrity import verify_evidence
    from prodcontrol.evidence.pack import Scope, StoreCheck, collect, write_pack
    from prodcontrol.evidence.period import period
    from prodcontrol.web.render import render_pack_index

    params = request.query_params
    try:
        if model:
            rt.config.model(model)
        start, end = period(params.get("from") or None, params.get("to") or None)
        chosen = params.getlist("framework")
        for fw in chosen:
            check_framework(rt.config.catalog, fw)
        scope = Scope(model=model or None, since=start, until=end, frameworks=chosen)
        sinks = anchor_sinks(rt.settings)
        checked = verify_evidence(rt.store, sinks, rt.trusted_keys(), rt.verify_policy())
        if not checked.ok and params.get("allow_broken") != "1":
            return message_page(
                request,
                "The evidence store fails verify",
                f"{checked.first_broken}. Add allow_broken=1 to the address to download the "
                "pack anyway; its first page will say it comes from a broken store.",
                409,
                "/",
            )
        check = StoreCheck(
            ok=checked.ok, problems=checked.problems[:20], allowed_broken=not checked.ok
        )
        anchors = [a for sink in sinks for a in sink.read_anchors()]
        contents = collect(
            rt.store, rt.config, scope, rt.clock.now(), anchors, store_check=check
        )
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "pack.zip"
            write_pack(contents, out, render_pack_index, rt.signing_key)
            data = out.read_bytes()
    except ProdControlError as exc:
        return message_page(request, "Cannot build the pack", str(exc), 400, "/")
    stamp = f"{rt.clock.now():%Y%m%d-%H%M}"
    filename = f"evidence-{model or 'fleet'}-{stamp}.zip"
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --------------------------------------------------------------------------- decisions


MAX_FORM_BYTES = 16 * 1024


def _form(body: bytes) -> dict[str, str] | None:
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8")).items()}
    except (UnicodeDecodeError, ValueError):
        return None


def _refusal(
    rt: Runtime, signer: Signer, viewer: Viewer, form: dict[str, str] | None
) -> tuple[int, str] | None:
    """``(status, why)`` when the decision form may not be taken, None when it may."""
    if form is None:
        return 400, "the form is not readable (UTF-8, at most 16 KiB)"
    if viewer.person is None:
        return 403, (
            "only a person known to people.yaml can decide gates: sign in with your personal "
            "token, or come through the company proxy; the shared web token is read-only"
        )
    if viewer.via != "personal token":  # a Bearer header is never sent by another site
        problem = signer.csrf_problem(viewer.csrf_binding, form.get("csrf", ""), rt.clock.now())
        if problem is not None:
            return 403, f"{problem}; reload the page and decide again"
    if not form.get("reason", "").strip():
        return 400, "give the reason for your decision; it is kept as evidence"
    if form.get("decision") not in ("approve", "reject"):
        return 400, "decision must be approve or reject"
    return None


@router.post("/gates/{gate_id}/decide")
async def decide_gate(request: Request, gate_id: str, rt: Rt) -> Response:
    from prodcontrol.control.gates.decisions import decide

    viewer = viewer_of(request)
    form = _form(await request.body())
    refused = _refusal(rt, request.app.state.signer, viewer, form)
    if refused is not None or form is None or viewer.person is None:
        status, why = refused or (400, "")
        return message_page(request, "Decision refused", why, status)
    decision, reason = form["decision"], form["reason"].strip()
    try:
        gate = rt.store.get_gate(gate_id)
        decided = decide(
            rt,
            gate_id,
            person=viewer.person,
            decision=cast(Any, decision),
            channel="web",
            reason=reason,
            credential=viewer.credential,
        )
    except DecisionRefused as exc:
        return message_page(
            request, "Decision refused", str(exc), 403, f"/models/{quote(gate.model)}"
        )
    except ProdControlError as exc:
        return message_page(request, "Decision not recorded", str(exc), 409, "/")
    note = quote(f"{viewer.person} {decision}d; gate is {decided.status}")
    return RedirectResponse(f"/models/{quote(decided.model)}?message={note}#gates", status_code=303)
