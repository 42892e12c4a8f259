"""``validate`` for data: every model's data sources hold the columns its data contract declares.

Local files are always checked (their header or Parquet schema only, never the rows): a path
that does not exist, a declared feature that is missing or of the wrong kind, a
``prediction_column`` / ``target_column`` / ``time_column`` that is not there. With
``probe=True`` the other sources (SQL, MLflow artifacts and datasets) are loaded too, through
the same :class:`~prodcontrol.ports.DatasetSource` a run uses, and checked the same way.

Each finding is a :class:`~prodcontrol.errors.Problem` at the ``models.yaml`` line that declares
the path or the column, so ``validate`` exits 2 before any run finds it as an outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prodcontrol.catalog.config import Config
from prodcontrol.catalog.schema import DataSource, DataSpec, FileSource, ModelEntry
from prodcontrol.catalog.yamlsource import Loc, YamlDocument, load_yaml
from prodcontrol.errors import Problem, ProdControlError, UnreachableError
from prodcontrol.ports import DatasetSource, MetricSource

SIDES = ("reference", "current")
HEADER_ROWS = 1000
"""Rows of a CSV read to tell a column's kind (the Parquet schema needs none)."""


@dataclass(frozen=True)
class Columns:
    """The columns of one data source and the kind of each (numeric, categorical, datetime)."""

    kinds: dict[str, str]
    source: str


@dataclass(frozen=True)
class SourceReport:
    problems: list[Problem]
    checked: int
    probed: int
    not_probed: int


def check_sources(
    config: Config,
    datasets: DatasetSource,
    metrics: MetricSource | None,
    *,
    probe: bool,
    now: datetime,
) -> SourceReport:
    """Problems with the data every model declares; raises nothing but UnreachableError."""
    doc = load_yaml(config.inventory.directory / "models.yaml")
    positions = _positions(doc)
    problems: list[Problem] = []
    checked = probed = not_probed = 0
    for model in config.inventory.models.values():
        if model.data is None:
            continue
        where: Loc = ("models", positions.get(model.name, 0), "data")
        label = f"models[{model.name}].data"
        found: dict[str, Columns | None] = {}
        for side in SIDES:
            spec: DataSource = getattr(model.data, side)
            if isinstance(spec, FileSource):
                checked += 1
                found[side] = _file_columns(
                    config, spec, doc=doc, where=(*where, side), label=label, problems=problems
                )
            elif probe:
                probed += 1
                found[side] = _probed(
                    model,
                    spec,
                    datasets=datasets,
                    metrics=metrics,
                    now=now,
                    doc=doc,
                    where=(*where, side),
                    label=label,
                    problems=problems,
                )
            else:
                not_probed += 1
                found[side] = None
        problems += list(_contract(model.data, found, doc, where, label))
        labels = model.data.labels
        if labels is not None and isinstance(labels.source, FileSource):
            checked += 1
            found["labels"] = _file_columns(
                config,
                labels.source,
                doc=doc,
                where=(*where, "labels", "source"),
                label=f"{label}.labels",
                problems=problems,
            )
        problems += list(_performance_columns(model.data, found, doc, where, label))
        problems += list(_control_segments(config, model, found, doc=doc, where=where, label=label))
    return SourceReport(problems, checked, probed, not_probed)


def _control_segments(
    config: Config,
    model: ModelEntry,
    found: dict[str, Columns | None],
    *,
    doc: YamlDocument,
    where: Loc,
    label: str,
) -> Iterator[Problem]:
    """Segment columns a control of the model's tier names in ``params.segments`` (the
    catalog's, shared by every model of the tier) must be in this model's data too."""
    known = {side: cols for side, cols in found.items() if cols is not None and side in SIDES}
    for control in config.controls_for(model):
        named = getattr(getattr(control, "params", None), "segments", None) or []
        for column in named:
            missing = [side for side, cols in known.items() if column not in cols.kinds]
            if missing:
                what = f"segment column of control '{control.id}' (params.segments)"
                yield doc.problem(
                    where, f"{label}.segments", _missing(column, missing, known, what)
                )


def _positions(doc: YamlDocument) -> dict[Any, int]:
    items = doc.data.get("models") if isinstance(doc.data, dict) else None
    found: dict[Any, int] = {}
    for position, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            found.setdefault(item.get("name"), position)
    return found


def _file_columns(
    config: Config,
    spec: FileSource,
    *,
    doc: YamlDocument,
    where: Loc,
    label: str,
    problems: list[Problem],
) -> Columns | None:
    from prodcontrol.adapters.datasets import missing_file_message

    base = config.inventory.directory
    written = Path(spec.path).expanduser()
    path = written if written.is_absolute() else (base / written).resolve()
    side = str(where[-1])
    if not path.exists():
        message = missing_file_message(spec.path, path, base)
        problems.append(doc.problem((*where, "path"), f"{label}.{side}.path", message))
        return None
    try:
        return read_columns(path, spec.format)
    except ProdControlError as exc:
        problems.append(doc.problem((*where, "path"), f"{label}.{side}.path", str(exc)))
        return None


def read_columns(path: Path, fmt: str | None) -> Columns:
    """A local file's columns and kinds from its Parquet schema or its first CSV rows."""
    import pandas as pd

    from prodcontrol.adapters.datasets import SUFFIX_FORMATS, DataError
    from prodcontrol.adapters.evidently import column_kind

    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIX_FORMATS)
        if len(files) != 1:
            raise DataError(f"{path} is a directory; point at one .csv or .parquet file in it")
        path = files[0]
    kind = fmt or SUFFIX_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(
            f"cannot tell the format of {path}; give format: csv or parquet in models.yaml"
        )
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            empty = pq.read_schema(path).empty_table().to_pandas()
            return Columns({str(c): column_kind(empty[c]) for c in empty.columns}, str(path))
        head = pd.read_csv(path, nrows=HEADER_ROWS)
    except pd.errors.EmptyDataError:
        return Columns({}, str(path))
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path} as {kind}: {exc}") from exc
    return Columns({str(c): column_kind(head[c]) for c in head.columns}, str(path))


def _probed(
    model: ModelEntry,
    spec: DataSource,
    *,
    datasets: DatasetSource,
    metrics: MetricSource | None,
    now: datetime,
    doc: YamlDocument,
    where: Loc,
    label: str,
    problems: list[Problem],
) -> Columns | None:
    """Load a SQL or MLflow source as a run would; an MLflow source without ``run_id`` reads
    the serving version's run."""
    from prodcontrol.adapters.evidently import column_kind

    side = str(where[-1])
    try:
        if spec.type in ("mlflow_artifact", "mlflow_dataset") and spec.run_id is None:
            if metrics is None:
                raise ProdControlError("no MLflow to resolve the serving version's run")
            version = metrics.resolve_alias(model.name, model.serving_alias)
            spec = spec.model_copy(update={"run_id": version.run_id})
        loaded = datasets.load(spec, now=now)
    except UnreachableError:
        raise
    except ProdControlError as exc:
        problems.append(doc.problem(where, f"{label}.{side}", f"probe: {exc}"))
        return None
    frame = loaded.frame
    return Columns({str(c): column_kind(frame[c]) for c in frame.columns}, loaded.source)


def _contract(
    data: DataSpec, found: dict[str, Columns | None], doc: YamlDocument, where: Loc, label: str
) -> Iterator[Problem]:
    """Every declared column is in both sources, with the declared kind."""
    known = {side: cols for side, cols in found.items() if cols is not None}
    if not known:
        return
    for group, kind in (("numerical", "numeric"), ("categorical", None)):
        for position, column in enumerate(getattr(data, group)):
            message = _column_problem(column, kind, known, group)
            if message:
                yield doc.problem((*where, group, position), f"{label}.{group}", message)
    for key in ("prediction_column", "target_column"):
        column = getattr(data, key)
        missing = [side for side, cols in known.items() if column and column not in cols.kinds]
        # a target often arrives after scoring: it needs to be in one of the two sources
        if missing and (key == "prediction_column" or len(missing) == len(known)):
            yield doc.problem(
                (*where, key), f"{label}.{key}", _missing(column, missing, known, key)
            )
    for side, cols in known.items():
        spec = getattr(data, side)
        time_column = getattr(spec, "time_column", None)
        if time_column and time_column not in cols.kinds:
            yield doc.problem(
                (*where, side, "time_column"),
                f"{label}.{side}.time_column",
                _missing(time_column, [side], known, "time_column"),
            )


def _performance_columns(
    data: DataSpec, found: dict[str, Columns | None], doc: YamlDocument, where: Loc, label: str
) -> Iterator[Problem]:
    """The score, id, label and segment columns the performance and segment controls read."""
    known = {side: cols for side, cols in found.items() if cols is not None}
    wanted: list[tuple[Loc, str, str | None, list[str]]] = [
        ((*where, "score_column"), "score_column", data.score_column, list(SIDES)),
    ]
    wanted += [
        ((*where, "segments", i), "segments", column, list(SIDES))
        for i, column in enumerate(data.segments)
    ]
    if data.labels is not None:
        labels = data.labels
        at: Loc = (*where, "labels")
        label_column = labels.label_column or data.target_column
        wanted += [
            ((*at, "id_column"), "labels.id_column", labels.id_column, ["current", "labels"]),
            ((*at, "label_column"), "labels.label_column", label_column, ["labels"]),
            ((*at, "time_column"), "labels.time_column", labels.time_column, ["labels"]),
        ]
    for loc, key, column, sides in wanted:
        missing = [
            side for side in sides if column and side in known and column not in known[side].kinds
        ]
        if missing:
            yield doc.problem(loc, f"{label}.{key}", _missing(column or "", missing, known, key))


def _column_problem(
    column: str, kind: str | None, known: dict[str, Columns], group: str
) -> str | None:
    missing = [side for side, cols in known.items() if column not in cols.kinds]
    if missing:
        return _missing(column, missing, known, f"{group} feature")
    if kind is None:
        return None
    wrong = {side: cols.kinds[column] for side, cols in known.items() if cols.kinds[column] != kind}
    if not wrong:
        return None
    side, actual = next(iter(wrong.items()))
    return (
        f"'{column}' is declared numerical but holds {actual} values in the {side} data "
        f"({known[side].source}); move it to categorical or fix the data"
    )


def _missing(column: str, sides: list[str], known: dict[str, Columns], what: str) -> str:
    import difflib

    columns = list(known[sides[0]].kinds)
    close = difflib.get_close_matches(column, columns, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    where = " and ".join(f"the {side} data ({known[side].source})" for side in sides)
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    return f"{what} '{column}' is not in {where}{hint} (its columns: {shown})"
