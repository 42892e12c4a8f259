"""``evidence verify | export | frameworks | anchor | purge``: evidence for risk and audit teams."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prodcontrol.cli.app import CatalogOpt, InventoryOpt, JsonOpt, runtime
from prodcontrol.cli.output import console, emit, emit_object, err_console, verdict_label
from prodcontrol.errors import EXIT_CONTROLS_FAILED, EXIT_UNREACHABLE, UsageError
from prodcontrol.evidence.period import parse_day, period

if TYPE_CHECKING:
    from prodcontrol.evidence.integrity import VerifyPolicy
    from prodcontrol.runtime import Runtime

evidence_app = typer.Typer(help="Tamper-evident evidence: verify, export, map, purge.")

FromOpt = Annotated[
    str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC), inclusive.")
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD, UTC), inclusive.")]


@evidence_app.command("verify")
def verify(
    pack: Annotated[
        Path | None, typer.Argument(help="An exported pack to check offline (no database).")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The public key (PEM) a pack must be signed by."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Recompute the chain, signatures, every artifact's SHA-256 and the anchors; exit 1 if
    anything broke."""
    if pack is not None:
        _verify_pack(pack, public_key, as_json)
        return
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks
    from prodcontrol.evidence.integrity import verify_evidence

    rt = runtime()
    report = verify_evidence(
        rt.store, anchor_sinks(rt.settings), rt.trusted_keys(), verify_policy(rt)
    )
    summary: dict[str, object] = {
        "intact": report.ok,
        "signing": report.signing.state,
        "signed_by": report.signing.key_id,
        "signatures_checked": report.signing.signatures_checked,
        "entries": report.chain.count,
        "head": f"#{report.chain.head_seq} {report.chain.head_hash}",
        "rows_checked": report.rows_checked,
        "artifacts_checked": report.artifacts_checked,
        "anchors_checked": report.anchors_checked,
        "newest_anchor": report.newest_anchor,
        "first_broken": report.first_broken,
    }
    for warning in report.warnings if not as_json else []:
        err_console.print(f"[yellow]note:[/yellow] {warning}", highlight=False)
    summary["warnings"] = report.warnings if as_json else len(report.warnings)
    _finish(summary | {"problems": report.problems}, report.ok, as_json, "Evidence store")


def verify_policy(rt: Runtime) -> VerifyPolicy:
    return rt.verify_policy()


def _verify_pack(pack: Path, public_key: Path | None, as_json: bool) -> None:
    from prodcontrol.evidence.pack import verify_pack
    from prodcontrol.evidence.signing import VerifyKey
    from prodcontrol.runtime import Runtime
    from prodcontrol.settings import load_settings

    if not pack.is_file():
        raise UsageError(f"{pack}: no such file; pass the path of an exported pack")
    if public_key is not None:
        trusted = [VerifyKey.load(public_key)]
    else:
        trusted = Runtime(load_settings()).trusted_keys()
    report = verify_pack(pack, trusted[0] if trusted else None)
    head = report.chain_head or {}
    summary: dict[str, object] = {
        "pack": str(pack),
        "intact": report.ok,
        "signed_by": report.signed_by,
        "trusted_key": report.trusted,
        "files_checked": report.files_checked,
        "entries_checked": report.entries_checked,
        "artifacts_checked": report.artifacts_checked,
        "head": f"#{head.get('seq')} {head.get('hash')}" if head else None,
        "anchors": [f"#{a['seq']} {a['hash']!s:.16} ({a['where']})" for a in report.anchors[-3:]],
        "first_broken": report.first_broken,
        "notes": report.notes,
    }
    _finish(summary | {"problems": report.problems}, report.ok, as_json, "Evidence pack")


def _finish(summary: dict[str, object], ok: bool, as_json: bool, what: str) -> None:
    problems = summary.pop("problems")
    if as_json:
        emit_object(summary | {"problems": problems}, as_json=True)
    else:
        emit_object(summary, as_json=False, title=f"{what}: {'intact' if ok else 'BROKEN'}")
        for problem in problems if isinstance(problems, list) else []:
            err_console.print(f"[red]broken:[/red] {problem}", highlight=False)
    if not ok:
        raise typer.Exit(EXIT_CONTROLS_FAILED)


@evidence_app.command("export")
def export(  # noqa: PLR0917 - Typer maps each option to one parameter
    out: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    since: FromOpt = None,
    until: ToOpt = None,
    framework: Annotated[
        list[str] | None,
        typer.Option("--framework", help="eu-ai-act, nist-ai-rmf, iso-42001 or sr-26-2; repeat."),
    ] = None,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    allow_broken: Annotated[
        bool,
        typer.Option(
            "--allow-broken",
            help="Export a store that fails verify anyway; the pack's first page says so.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify the store, then write a signed, self-contained pack a reviewer checks offline."""
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks
    from prodcontrol.evidence.frameworks import check_framework
    from prodcontrol.evidence.integrity import verify_evidence
    from prodcontrol.evidence.pack import Scope, StoreCheck, collect, write_pack
    from prodcontrol.web.render import render_pack_index

    rt = runtime(catalog, inventory)
    if model is not None:
        rt.config.model(model)
    for fw in framework or []:
        check_framework(rt.config.catalog, fw)
    start, end = period(since, until)
    scope = Scope(model=model, since=start, until=end, frameworks=framework or [])
    sinks = anchor_sinks(rt.settings)
    with console.status("verifying the evidence store first"):
        checked = verify_evidence(rt.store, sinks, rt.trusted_keys(), verify_policy(rt))
    if not checked.ok and not allow_broken:
        for problem in checked.problems[:10]:
            err_console.print(f"[red]broken:[/red] {problem}", highlight=False)
        raise UsageError(
            f"refusing to export: the evidence store fails verify ({checked.first_broken}); "
            "fix or explain it, or pass --allow-broken to export it with that stated on the "
            "pack's first page"
        )
    store_check = StoreCheck(
        ok=checked.ok, problems=checked.problems[:20], allowed_broken=not checked.ok
    )
    anchors = [a for sink in sinks for a in sink.read_anchors()]
    with console.status("collecting evidence"):
        contents = collect(
            rt.store, rt.config, scope, rt.clock.now(), anchors, store_check=store_check
        )
        manifest = write_pack(contents, out, render_pack_index, rt.signing_key)
    emit_object(
        {
            "pack": str(out),
            "runs": len(contents.runs),
            "findings": len(contents.findings),
            "entries": len(contents.events),
            "files": len(manifest.members),
            "head": f"#{manifest.chain_head.seq} {manifest.chain_head.hash}",
            "signed_by": rt.signing_key.key_id if rt.signing_key else None,
            "store_verified": checked.ok,
            "missing_artifacts": manifest.missing_artifacts,
        },
        as_json=as_json,
        title="Evidence pack written",
    )


@evidence_app.command("keygen")
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the private key (PATH.pub: public).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Create an Ed25519 evidence signing key; keep it outside the database and its backups."""
    from prodcontrol.evidence.signing import SigningKey

    key = SigningKey.generate()
    public = key.write(out)
    emit_object(
        {
            "key_id": key.key_id,
            "private_key": str(out),
            "public_key": str(public),
            "next": f"set PRODCONTROL_EVIDENCE_SIGNING_KEY={out} (or evidence_signing_key in "
            "prodcontrol.toml) on every process that writes evidence; give the .pub file to "
            "whoever verifies",
        },
        as_json=as_json,
        title="Evidence signing key written",
    )


@evidence_app.command("rotate-key")
def rotate_key(
    new: Annotated[Path, typer.Option("--new", help="The new private key (from keygen).")],
    as_json: JsonOpt = False,
) -> None:
    """Replace the store's signing key: the rotation is a chained entry endorsed by the old key."""
    from prodcontrol.evidence.signing import SigningKey

    rt = runtime()
    if rt.signing_key is None:
        raise UsageError(
            "rotate-key needs the current key: set evidence_signing_key to it, and pass the "
            "new one with --new"
        )
    store = rt.store
    if not hasattr(store, "rotate_key"):
        raise UsageError(f"{type(store).__name__} cannot rotate keys")
    key = SigningKey.load(new)
    event = store.rotate_key(key)
    emit_object(
        {
            "entry": event.seq,
            "old_key": rt.signing_key.key_id,
            "new_key": key.key_id,
            "next": f"set evidence_signing_key to {new} everywhere now; the old key signs "
            "nothing from here on",
        },
        as_json=as_json,
        title="Evidence key rotated",
    )


@evidence_app.command("frameworks")
def frameworks(  # noqa: PLR0917 - Typer maps each option to one parameter
    framework: Annotated[str, typer.Option("--framework", help="Framework id from the catalog.")],
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    since: FromOpt = None,
    until: ToOpt = None,
    catalog: CatalogOpt = None,
    inventory: InventoryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Clause -> controls -> runs in the period -> outcome; clauses with no evidence are gaps."""
    from prodcontrol.evidence.frameworks import framework_view

    rt = runtime(catalog, inventory)
    start, end = period(since, until)
    runs = rt.store.list_runs(model=model, since=start, until=end)
    rows = framework_view(
        rt.config.catalog, framework, [(r, rt.store.verdicts_for(r.id)) for r in runs]
    )
    data = [r.model_dump() for r in rows]
    if not as_json:
        for row in data:
            row["outcome"] = "GAP" if row["gap"] else verdict_label(row["outcome"])
            row["verdicts"] = {verdict_label(k): n for k, n in row["verdicts"].items()}
    emit(
        data,
        as_json=as_json,
        title=f"{framework}: {sum(r.gap for r in rows)} gap(s) in {len(rows)} clauses",
        columns=["clause", "title", "controls", "runs", "verdicts", "outcome"],
    )


@evidence_app.command("anchor")
def anchor(as_json: JsonOpt = False) -> None:
    """Anchor the signed chain head now (control runs and ticks already do it automatically)."""
    from prodcontrol.control.runs.anchoring import anchor_if_due

    rt = runtime()
    outcome = anchor_if_due(rt, force=True)
    if outcome is None:
        raise UsageError("anchoring failed; see the log above")
    emit_object(
        {
            "entry": outcome.seq,
            "hash": outcome.hash,
            "written_to": outcome.written_to,
            "failed": outcome.failed,
            "skipped": outcome.skipped,
            "recorded_as_entry": outcome.event_seq,
        },
        as_json=as_json,
        title="Chain head anchored" if outcome.written_to else "Nothing anchored",
    )
    if outcome.failed:
        raise typer.Exit(EXIT_UNREACHABLE)


@evidence_app.command("purge")
def purge(
    before: Annotated[str, typer.Option("--before", help="Delete evidence before this day.")],
    by: Annotated[str, typer.Option("--by", help="Who purges (recorded).")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Delete evidence older than a day; refused inside the retention period; the purge is
    itself recorded in the chain."""
    from prodcontrol.adapters.mlflow_anchor import anchor_sinks

    rt = runtime()
    store = rt.store
    if not hasattr(store, "purge"):
        raise UsageError(f"{type(store).__name__} cannot purge evidence")
    sinks = anchor_sinks(rt.settings)
    anchors = [a for sink in sinks for a in sink.read_anchors()] if sinks else None
    report = store.purge(
        parse_day(before, "--before"),
        retention_days=rt.settings.retention_days,
        by=by,
        anchors=anchors,
    )
    removed = _remove_files(report.artifact_paths, rt.settings.artifact_dir)
    emit_object(
        {
            "before": report.before,
            "entries_deleted": report.events_deleted,
            "rows_deleted": report.deleted,
            "rows_retained": report.retained,
            "artifact_files_deleted": removed,
            "recorded_as_entry": report.event_seq,
        },
        as_json=as_json,
        title="Nothing to purge" if report.nothing else "Evidence purged",
    )


def _remove_files(paths: list[str], artifact_dir: Path) -> int:
    """Delete purged artifact files that live under the state dir's artifacts (only those)."""
    removed = 0
    root = artifact_dir.resolve()
    for name in paths:
        path = Path(name).resolve()
        if path.is_file() and path.is_relative_to(root):
            path.unlink()
            removed += 1
    return removed


def register(app: typer.Typer) -> None:
    app.add_typer(evidence_app, name="evidence")
