"""Reference and current data from where ``models.yaml`` says they are.

Four kinds of source (:mod:`prodcontrol.catalog.schema`):

* ``file``: a CSV or Parquet file; a relative path is resolved against the inventory directory
  (``base_dir``). The format comes from ``format`` or the file's suffix.
* ``sql``: a query through SQLAlchemy. With ``time_column`` and ``window`` the query is wrapped
  as ``SELECT * FROM (<query>) WHERE <time_column> >= :since`` so the database returns only the
  window, and the window is applied again after parsing (dialects compare times differently).
* ``mlflow_artifact``: an artifact file of a run (``run_id``; the check runner fills in the
  serving version's run when it is not given).
* ``mlflow_dataset``: a dataset logged as a run input (``mlflow.log_input``), found by name and,
  if given, context; it is loaded from its recorded source, which must be a location MLflow can
  download (a file path, ``s3://``, ``http(s)://``...). A column of the logged schema that the
  loaded data lacks is a schema mismatch.

Data age (``Dataset.newest_at``, read by the ``data_age`` freshness control): the newest value of
``time_column`` when one is given; otherwise the file's modification time for files, and the end
(or start) time of the MLflow run for MLflow sources. A SQL source without ``time_column`` has no
age, and a ``data_age`` control on it gives ``error``.

What goes wrong becomes an exception the check runner turns into an ``error`` verdict:
:class:`~prodcontrol.errors.UnreachableError` for a database or MLflow that does not answer (exit
code 3, retried by the flows); :class:`DataError` for a local file that is not there (a
configuration mistake, not an outage: ``prodcontrol validate`` reports it, a run records ``error``
without retrying), an empty window, a missing time column, a schema mismatch or a query the
database refuses.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from prodcontrol.adapters.mlflow import MlflowAdapter
from prodcontrol.catalog.schema import (
    DataSource,
    FileSource,
    MlflowArtifactSource,
    MlflowDatasetSource,
    SqlSource,
)
from prodcontrol.catalog.types import format_duration
from prodcontrol.errors import ProdControlError, UnreachableError
from prodcontrol.ports import Dataset

SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class DataError(ProdControlError):
    """The data is there but cannot be used as it is (empty, wrong shape, bad query)."""


class FileSqlMlflowDatasets:
    """:class:`~prodcontrol.ports.DatasetSource` for files, SQL queries and MLflow runs."""

    def __init__(self, base_dir: Path, tracking_uri: str) -> None:
        self.base_dir = Path(base_dir)
        self.tracking_uri = tracking_uri

    def load(
        self, spec: DataSource, *, now: datetime, columns: list[str] | None = None
    ) -> Dataset:
        if isinstance(spec, FileSource):
            return self._file(spec, now, columns)
        if isinstance(spec, SqlSource):
            return _pruned(self._sql(spec, now), columns)
        if isinstance(spec, MlflowArtifactSource):
            return _pruned(self._mlflow_artifact(spec), columns)
        return _pruned(self._mlflow_dataset(spec), columns)

    # ------------------------------------------------------------------ files

    def resolve(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    def _file(self, spec: FileSource, now: datetime, columns: list[str] | None) -> Dataset:
        path = self.resolve(spec.path)
        if not path.exists():
            raise DataError(missing_file_message(spec.path, path, self.base_dir))
        frame = read_table(path, spec.format, columns)
        modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
        return _windowed(frame, str(path), spec.time_column, spec.window, now, fallback=modified)

    # ------------------------------------------------------------------ SQL

    def _sql(self, spec: SqlSource, now: datetime) -> Dataset:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import SQLAlchemyError

        shown = make_url(spec.url).render_as_string(hide_password=True)
        query, params = spec.query.strip().rstrip(";"), {}
        if spec.time_column and spec.window:
            since = (now - spec.window).astimezone(UTC).replace(tzinfo=None)
            query = f"SELECT * FROM ({query}) AS windowed WHERE {spec.time_column} >= :since"
            params = {"since": since}
        engine = create_engine(spec.url, pool_pre_ping=True)
        try:
            try:
                connection = engine.connect()
            except SQLAlchemyError as exc:
                raise UnreachableError(
                    "database",
                    shown,
                    _first_line(str(getattr(exc, "orig", None) or exc)),
                    "check the data source URL in models.yaml and that the database is up",
                ) from exc
            with connection:
                try:
                    frame = pd.read_sql_query(text(query), connection, params=params)
                except SQLAlchemyError as exc:
                    raise DataError(
                        f"the query of data source {shown} failed: "
                        f"{_first_line(str(getattr(exc, 'orig', None) or exc))}; "
                        "check the query and time_column in models.yaml"
                    ) from exc
        finally:
            engine.dispose()
        return _windowed(frame, f"sql {shown}", spec.time_column, spec.window, now, fallback=None)

    # ------------------------------------------------------------------ MLflow

    @cached_property
    def mlflow(self) -> MlflowAdapter:
        return MlflowAdapter(self.tracking_uri)

    def _run(self, run_id: str | None, what: str) -> Any:
        if run_id is None:
            raise DataError(
                f"{what} names no run_id and the serving version's run is not known; "
                "give run_id in models.yaml or point the serving alias at a version with a run"
            )
        with self.mlflow.translate_errors(f"run '{run_id}' for {what}"):
            return self.mlflow.client.get_run(run_id)

    def _mlflow_artifact(self, spec: MlflowArtifactSource) -> Dataset:
        what = f"MLflow artifact '{spec.artifact_path}'"
        run = self._run(spec.run_id, what)
        from mlflow.artifacts import download_artifacts

        run_id = run.info.run_id
        with self.mlflow.translate_errors(f"{what} of run {run_id}"):
            local = download_artifacts(
                run_id=run_id,
                artifact_path=spec.artifact_path,
                dst_path=tempfile.mkdtemp(prefix="prodcontrol-data-"),
                tracking_uri=self.tracking_uri,
            )
        frame = read_table(Path(local), None)
        return _dataset(frame, f"runs:/{run_id}/{spec.artifact_path}", _run_time(run))

    def _mlflow_dataset(self, spec: MlflowDatasetSource) -> Dataset:
        what = f"MLflow dataset '{spec.name}'"
        run = self._run(spec.run_id, what)
        inputs = run.inputs.dataset_inputs if run.inputs else []
        found = [
            item
            for item in inputs
            if item.dataset.name == spec.name
            and (spec.context is None or _context(item) == spec.context)
        ]
        if not found:
            logged = sorted({f"{i.dataset.name} ({_context(i)})" for i in inputs})
            raise DataError(
                f"run {run.info.run_id} logged no dataset named '{spec.name}'"
                + (f" with context '{spec.context}'" if spec.context else "")
                + f"; it logged: {', '.join(logged) or 'none'}"
            )
        entity = found[-1].dataset
        local = self._download_source(entity, what, run.info.run_id)
        frame = read_table(Path(local), None)
        _check_logged_schema(frame, entity.schema, what)
        return _dataset(frame, f"{what} of run {run.info.run_id}", _run_time(run))

    def _download_source(self, entity: Any, what: str, run_id: str) -> str:
        from mlflow.data import get_source

        try:
            source = get_source(entity)
        except Exception as exc:
            raise DataError(
                f"{what} has a source MLflow cannot load ({entity.source_type}: {exc}); log it "
                "with a downloadable source (a file path, s3://, http(s)://) or use mlflow_artifact"
            ) from exc
        with self.mlflow.translate_errors(f"{what} of run {run_id}"):
            try:
                return str(source.load())
            except FileNotFoundError as exc:
                raise UnreachableError(
                    "data source",
                    str(entity.source),
                    "the dataset's source file is gone",
                    "log the dataset again from where it lives now",
                ) from exc


# --------------------------------------------------------------------------- helpers


def missing_file_message(written: str, resolved: Path, base_dir: Path) -> str:
    """What to say about a local data path that does not exist (validate and runs say the same)."""
    near = _similar_files(resolved)
    hint = f"; did you mean {near}?" if near else ""
    return (
        f"no such file {resolved} (data path '{written}' in models.yaml; relative paths are "
        f"resolved against the inventory directory {base_dir}){hint}"
    )


def _similar_files(path: Path) -> str | None:
    import difflib

    if not path.parent.is_dir():
        return None
    names = [p.name for p in path.parent.iterdir() if p.is_file()]
    close = difflib.get_close_matches(path.name, names, n=1, cutoff=0.6)
    return f"'{close[0]}'" if close else None


def read_table(path: Path, fmt: str | None, columns: list[str] | None = None) -> Any:
    """A CSV or Parquet file as a DataFrame; the format from ``fmt`` or the suffix.

    With ``columns`` only those the file has are read: Parquet reads no other column from disk.
    """
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
        if kind == "csv":
            wanted = None if columns is None else set(columns)
            return pd.read_csv(path, usecols=None if wanted is None else lambda c: c in wanted)
        return pd.read_parquet(path, columns=_parquet_columns(path, columns))
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {path} as {kind}: {exc}") from exc


def _parquet_columns(path: Path, columns: list[str] | None) -> list[str] | None:
    """The wanted columns the file's schema has, in the file's order (``None``: all)."""
    if columns is None:
        return None
    import pyarrow.parquet as pq

    wanted = set(columns)
    return [name for name in pq.read_schema(path).names if name in wanted]


def _pruned(dataset: Dataset, columns: list[str] | None) -> Dataset:
    """A source that cannot read less (SQL, MLflow) still keeps only the wanted columns."""
    if columns is None:
        return dataset
    wanted = set(columns)
    frame = dataset.frame.loc[:, [c for c in dataset.frame.columns if c in wanted]]
    return dataset.model_copy(update={"frame": frame, "columns": [str(c) for c in frame.columns]})


def _windowed(
    frame: Any,
    source: str,
    time_column: str | None,
    window: timedelta | None,
    now: datetime,
    *,
    fallback: datetime | None,
) -> Dataset:
    if time_column is None:
        if window is not None:
            raise DataError(f"{source}: a window needs a time_column to filter on")
        return _dataset(frame, source, fallback)
    if time_column not in frame.columns:
        raise DataError(
            f"{source}: time column '{time_column}' is not in the data; columns are "
            f"{', '.join(map(str, frame.columns)) or 'none'}"
        )
    times = pd.to_datetime(frame[time_column], utc=True, errors="coerce")
    if window is not None:
        keep = times >= pd.Timestamp(now - window)
        newest_any = times.max()
        frame, times = frame[keep.to_numpy()], times[keep]
        if frame.empty:
            last = "no rows at all" if pd.isna(newest_any) else f"newest row at {newest_any}"
            raise DataError(
                f"{source}: no rows in the window of the last {format_duration(window)} "
                f"before {now.isoformat()} ({last}); is the data pipeline delivering?"
            )
    newest = times.max()
    return _dataset(frame, source, None if pd.isna(newest) else newest.to_pydatetime())


def _dataset(frame: Any, source: str, newest_at: datetime | None) -> Dataset:
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{source} has no rows; the control cannot measure empty data")
    return Dataset(
        frame=frame,
        rows=len(frame),
        columns=[str(c) for c in frame.columns],
        source=source,
        newest_at=newest_at,
    )


def _check_logged_schema(frame: Any, schema_json: str | None, what: str) -> None:
    import json

    if not schema_json:
        return
    try:
        specs = json.loads(schema_json).get("mlflow_colspec", [])
    except (ValueError, AttributeError):
        return
    names = [str(s["name"]) for s in specs if isinstance(s, dict) and s.get("name")]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataError(
            f"schema mismatch: {what} was logged with column(s) {', '.join(missing)} that the "
            f"loaded data lacks; log the dataset again or fix its source"
        )


def _context(item: Any) -> str | None:
    for tag in item.tags or []:
        if tag.key == "mlflow.data.context":
            return str(tag.value)
    return None


def _run_time(run: Any) -> datetime | None:
    stamp = run.info.end_time or run.info.start_time
    return None if stamp is None else datetime.fromtimestamp(stamp / 1000, tz=UTC)


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
