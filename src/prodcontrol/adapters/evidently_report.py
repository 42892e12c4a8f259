"""The run's one Evidently report: every data control's metrics, on one bounded sample.

A control run used to render one Evidently report per drift or data-quality control, each on its
own sample (six reports, 14 s and 22 MB per high-tier run at 1M rows, issue 19). The verdicts
never needed them: they stand on the full-data statistics of :mod:`.evidently`. So a run now
renders **one** report, after its controls are measured, holding the metrics every measured
control asked for (:class:`~prodcontrol.ports.ReportSpec`), on **one** seeded sample of at most
``sampling.max_rows`` rows of each side (stratified as the drift control asks).

Files kept per run: the results JSON (``run-report.evidently.json``, metrics and tests, a few
tens of kB) and Evidently's full snapshot, widgets included, gzip-compressed
(``run-report.evidently.snapshot.json.gz``, about 160 kB; :mod:`.evidently_snapshot`). No HTML
is written at run time: Evidently's HTML inlines its whole JavaScript bundle (about 4 MB, 1.2 MB
gzip-compressed), and writing and compressing it cost about 0.3 s of CPU a run. The web browser
renders the page from the snapshot when somebody opens it, after checking the file's SHA-256
against the evidence. The SHA-256 recorded as evidence is each stored file's. Runs recorded
before keep their ``run-report.evidently.html.gz``, served as it is.

Evidently is imported here only, and this module only when a report is rendered: a process that
measures without rendering never pays Evidently's import (about 3 s of CPU here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evidently import ColumnType, DataDefinition, Report
from evidently import Dataset as EvidentlyDataset
from evidently.metrics import (
    ColumnCount,
    DatasetMissingValueCount,
    MissingValueCount,
    OutListValueCount,
    OutRangeValueCount,
    ValueDrift,
)

from prodcontrol.adapters.evidently import column_kind, draw_sample
from prodcontrol.adapters.evidently_snapshot import (
    SNAPSHOT_MEDIA_TYPE,
    SNAPSHOT_SUFFIX,
    deterministic_gzip,
    snapshot_bytes,
)
from prodcontrol.catalog.schema import Sampling
from prodcontrol.evidence.records import file_sha256
from prodcontrol.ports import ArtifactFile, Measurement, ReportMetric, ReportSpec, RunReport

STEM = "run-report"
_COLUMN_TYPES = {"numerical": ColumnType.Numerical, "categorical": ColumnType.Categorical}


def _metric(spec: ReportMetric) -> Any:
    """The Evidently metric a :class:`ReportMetric` names."""
    args = spec.args
    builders: dict[str, Any] = {
        "value_drift": lambda: ValueDrift(
            column=args["column"], method=args["method"], threshold=args["threshold"]
        ),
        "missing": lambda: DatasetMissingValueCount(columns=list(args["columns"])),
        "missing_column": lambda: MissingValueCount(column=args["column"]),
        "column_count": lambda: (
            ColumnCount(column_type=_COLUMN_TYPES[args["column_type"]])
            if args.get("column_type")
            else ColumnCount()
        ),
        "out_range": lambda: OutRangeValueCount(
            column=args["column"], left=args["left"], right=args["right"]
        ),
        "out_list": lambda: OutListValueCount(column=args["column"], values=list(args["values"])),
    }
    if spec.metric not in builders:
        raise ValueError(f"unknown report metric {spec.metric!r}")
    return builders[spec.metric]()


def _unique_metrics(specs: list[ReportSpec]) -> list[ReportMetric]:
    """Every metric once, in the order the controls asked for them."""
    seen: dict[str, ReportMetric] = {}
    for spec in specs:
        for metric in spec.metrics:
            key = json.dumps([metric.metric, metric.args], sort_keys=True, default=str)
            seen.setdefault(key, metric)
    return list(seen.values())


def _union(lists: list[list[str]]) -> list[str]:
    return list(dict.fromkeys(column for columns in lists for column in columns))


def _evidently_dataset(frame: Any) -> Any:
    """An Evidently dataset with the column kinds prodcontrol decided, so both agree."""
    kinds = {column: column_kind(frame[column]) for column in frame.columns}
    definition = DataDefinition(
        numerical_columns=[c for c, k in kinds.items() if k == "numeric"],
        categorical_columns=[c for c, k in kinds.items() if k == "categorical"],
        datetime_columns=[c for c, k in kinds.items() if k == "datetime"],
    )
    return EvidentlyDataset.from_pandas(frame, data_definition=definition)


def _artifact(path: Path, media_type: str) -> ArtifactFile:
    return ArtifactFile(
        name=path.name,
        path=str(path),
        sha256=file_sha256(path),
        media_type=media_type,
        size_bytes=path.stat().st_size,
    )


def write_report(snapshot: Any, out_dir: str, stem: str = STEM) -> list[ArtifactFile]:
    """The results JSON and the full snapshot, gzip-compressed (deterministically: the same
    snapshot, the same bytes); no HTML (rendered on demand from the snapshot)."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stem}.evidently.json"
    snapshot_path = folder / f"{stem}{SNAPSHOT_SUFFIX}"
    snapshot.save_json(str(json_path))
    snapshot_path.write_bytes(deterministic_gzip(snapshot_bytes(snapshot)))
    return [
        _artifact(json_path, "application/json"),
        _artifact(snapshot_path, SNAPSHOT_MEDIA_TYPE),
    ]


def report_values(snapshot: Any) -> dict[str, Any]:
    """Per-column ValueDrift scores and decisions as the report computed them on its sample."""
    summary = snapshot.dict()
    values: dict[str, Any] = {"scores": {}, "drifted": {}}
    for metric in summary["metrics"]:
        config = metric.get("config", {})
        if str(config.get("type", "")).endswith("ValueDrift"):
            values["scores"][str(config["column"])] = float(metric["value"])
    for test in summary["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if str(params.get("type", "")).endswith("ValueDrift"):
            values["drifted"][str(params["column"])] = test["status"] == "FAIL"
    return values


def merged_details(details: dict[str, Any], reported: dict[str, Any]) -> dict[str, Any]:
    """The control's details with the report's own numbers next to the exact ones (equal when
    nothing was sampled)."""
    merged = dict(details)
    columns = {c: dict(n) for c, n in details.get("columns", {}).items()}
    drifted: list[bool] = []
    for column, numbers in columns.items():
        if column in reported["scores"]:
            numbers["report_score"] = reported["scores"][column]
        if column in reported["drifted"]:
            numbers["report_drifted"] = reported["drifted"][column]
            drifted.append(reported["drifted"][column])
    if columns:
        merged["columns"] = columns
    if drifted and "drifted_columns" in details:
        merged["report_drifted_share"] = sum(drifted) / len(drifted)
    return merged


def render_run_report(
    measured: dict[str, Measurement],
    reference: Any,
    current: Any,
    *,
    sampling: Sampling,
    out_dir: str,
    title: str,
) -> RunReport:
    """Renders the one report of a run (see the module docstring); raises on failure."""
    specs = [m.report for m in measured.values() if m.report is not None and m.error is None]
    if not specs:
        return RunReport()
    columns = (
        _union([s.reference_columns for s in specs]),
        _union([s.current_columns for s in specs]),
    )
    sample = draw_sample(reference, current, sampling, columns, _union([s.strata for s in specs]))
    info = sample.info
    report = Report(
        [_metric(m) for m in _unique_metrics(specs)],
        include_tests=True,
        metadata={
            "prodcontrol_run": title,
            "prodcontrol_controls": ", ".join(measured),
            "prodcontrol_sample": f"{info['strategy']}: {info['size']} of {info['rows_total']} "
            f"current rows, seed {info['seed']}",
        },
    )
    snapshot = report.run(
        current_data=_evidently_dataset(sample.current),
        reference_data=_evidently_dataset(sample.reference),
    )
    artifacts = write_report(snapshot, out_dir)
    reported = report_values(snapshot)
    details = {
        control_id: merged_details(m.details, reported)
        for control_id, m in measured.items()
        if m.report is not None and m.error is None
    }
    return RunReport(artifacts=artifacts, sample=info, details=details)
