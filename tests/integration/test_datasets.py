"""FileSqlMlflowDatasets against real files, a real SQLite database and the real MLflow server."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine

from prodcontrol.adapters.datasets import DataError, FileSqlMlflowDatasets
from prodcontrol.catalog.schema import (
    FileSource,
    MlflowArtifactSource,
    MlflowDatasetSource,
    SqlSource,
)
from prodcontrol.errors import UnreachableError

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def frame(rows: int = 50, start: datetime = NOW - timedelta(days=3)) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "kind": rng.choice(["a", "b"], size=rows),
            "at": [start + timedelta(hours=i) for i in range(rows)],
        }
    )


@pytest.fixture
def source(tmp_path: Path) -> FileSqlMlflowDatasets:
    return FileSqlMlflowDatasets(tmp_path, "http://127.0.0.1:9")


def test_csv_relative_to_inventory_with_file_time_as_age(
    tmp_path: Path, source: FileSqlMlflowDatasets
) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "current.csv"
    frame().drop(columns="at").to_csv(path, index=False)
    stamp = (NOW - timedelta(hours=5)).timestamp()
    os.utime(path, (stamp, stamp))
    loaded = source.load(FileSource(type="file", path="data/current.csv"), now=NOW)
    assert (loaded.rows, loaded.columns) == (50, ["x", "kind"])
    assert loaded.newest_at == NOW - timedelta(hours=5)
    assert loaded.source == str(path)


def test_parquet_window_on_time_column(tmp_path: Path, source: FileSqlMlflowDatasets) -> None:
    frame(rows=72).to_parquet(tmp_path / "current.parquet")
    spec = FileSource(type="file", path="current.parquet", time_column="at", window="1d")
    loaded = source.load(spec, now=NOW)
    assert loaded.rows == 24  # hours 48..71 of the 72 before NOW
    assert loaded.newest_at == NOW - timedelta(hours=1)


def test_empty_window_missing_file_and_unknown_format_are_clear_errors(
    tmp_path: Path, source: FileSqlMlflowDatasets
) -> None:
    frame(start=NOW - timedelta(days=30)).to_csv(tmp_path / "old.csv", index=False)
    stale = FileSource(type="file", path="old.csv", time_column="at", window="1d")
    with pytest.raises(DataError, match=r"no rows in the window of the last 1d .*newest row at"):
        source.load(stale, now=NOW)
    with pytest.raises(DataError, match="no such file") as missing:
        source.load(FileSource(type="file", path="nope.csv"), now=NOW)
    assert "inventory directory" in str(missing.value)
    (tmp_path / "data.txt").write_text("x\n1\n")
    with pytest.raises(DataError, match="format"):
        source.load(FileSource(type="file", path="data.txt"), now=NOW)
    with pytest.raises(DataError, match="time column 'ts' is not in the data"):
        source.load(FileSource(type="file", path="old.csv", time_column="ts"), now=NOW)


def test_sql_window_is_pushed_into_the_query(tmp_path: Path, source: FileSqlMlflowDatasets) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    data = frame(rows=72)
    data["at"] = data["at"].dt.tz_localize(None)  # SQLite has no time zones: store UTC naive
    with create_engine(url).begin() as connection:
        data.to_sql("scores", connection, index=False)
    spec = SqlSource(
        type="sql", url=url, query="SELECT x, kind, at FROM scores;", time_column="at", window="1d"
    )
    loaded = source.load(spec, now=NOW)
    assert loaded.rows == 24
    assert loaded.newest_at == NOW - timedelta(hours=1)
    assert loaded.source.startswith("sql sqlite:///")


def test_sql_errors(tmp_path: Path, source: FileSqlMlflowDatasets) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    with pytest.raises(DataError, match=r"query of data source .* failed: no such table"):
        source.load(SqlSource(type="sql", url=url, query="SELECT * FROM missing"), now=NOW)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = f"postgresql+psycopg://reader:secret@127.0.0.1:{port}/prod"
    with pytest.raises(UnreachableError) as caught:
        source.load(SqlSource(type="sql", url=down, query="SELECT 1"), now=NOW)
    assert caught.value.system == "database"
    assert "secret" not in str(caught.value)


def _run_with_data(mlflow_uri: str, tmp_path: Path, data: pd.DataFrame) -> str:
    from mlflow import MlflowClient
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import DatasetInput, InputTag

    client = MlflowClient(mlflow_uri)
    experiment = client.create_experiment(f"datasets-{uuid.uuid4().hex[:8]}")
    run_id: str = client.create_run(experiment).info.run_id
    path = tmp_path / "logged.csv"
    data.to_csv(path, index=False)
    client.log_artifact(run_id, str(path), artifact_path="data")
    dataset = from_pandas(data, source=str(path), name="scoring")
    tags = [InputTag(key="mlflow.data.context", value="current")]
    client.log_inputs(run_id, datasets=[DatasetInput(dataset._to_mlflow_entity(), tags)])
    client.set_terminated(run_id)
    return run_id


def test_mlflow_artifact_and_logged_dataset(mlflow_uri: str, tmp_path: Path) -> None:
    data = frame().drop(columns="at")
    run_id = _run_with_data(mlflow_uri, tmp_path, data)
    source = FileSqlMlflowDatasets(tmp_path, mlflow_uri)
    artifact = source.load(
        MlflowArtifactSource(
            type="mlflow_artifact", artifact_path="data/logged.csv", run_id=run_id
        ),
        now=NOW,
    )
    assert (artifact.rows, artifact.columns) == (50, ["x", "kind"])
    assert artifact.newest_at is not None
    logged = source.load(
        MlflowDatasetSource(
            type="mlflow_dataset", name="scoring", context="current", run_id=run_id
        ),
        now=NOW,
    )
    assert logged.rows == 50
    with pytest.raises(DataError, match=r"no dataset named 'other'.*scoring \(current\)"):
        source.load(
            MlflowDatasetSource(type="mlflow_dataset", name="other", run_id=run_id), now=NOW
        )
    # the file behind the logged dataset lost a column: the logged schema says so
    data.drop(columns="kind").to_csv(tmp_path / "logged.csv", index=False)
    with pytest.raises(DataError, match=r"schema mismatch: .* kind"):
        source.load(
            MlflowDatasetSource(type="mlflow_dataset", name="scoring", run_id=run_id), now=NOW
        )
    with pytest.raises(DataError, match="names no run_id"):
        source.load(MlflowDatasetSource(type="mlflow_dataset", name="scoring"), now=NOW)
