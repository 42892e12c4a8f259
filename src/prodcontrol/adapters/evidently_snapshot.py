"""The run report's full Evidently snapshot: written at run time, rendered to HTML on demand.

A control run keeps Evidently's **full** snapshot (``Snapshot.dump_dict``: every metric result
and every widget with its plotly figures), gzip-compressed, instead of the HTML: the HTML is the
same widgets inside Evidently's 3 MB JavaScript bundle, and writing plus compressing it cost
more CPU than the run report's own statistics (issue 19). :func:`render_html` turns a stored
snapshot back into exactly the page ``save_html`` wrote (``Snapshot.load_dict`` then
``get_html_str``), when somebody asks for it.

Evidently is imported inside the functions only: the web application imports this module and
must not pay Evidently's import (about 3 s of CPU) before a report is asked for.
"""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

from prodcontrol.evidence.integrity import VerifiedFile

SNAPSHOT_MEDIA_TYPE = "application/vnd.evidently.snapshot+json"
SNAPSHOT_SUFFIX = ".evidently.snapshot.json.gz"
GZIP_LEVEL = 6


def is_snapshot(name: str, media_type: str = "") -> bool:
    """Whether an artifact is a stored snapshot (by media type, or by name for a bare path)."""
    return media_type == SNAPSHOT_MEDIA_TYPE or name.endswith(SNAPSHOT_SUFFIX)


def deterministic_gzip(data: bytes) -> bytes:
    """Gzip with no name and no time in the header: the same input, the same bytes."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=GZIP_LEVEL) as z:
        z.write(data)
    return out.getvalue()


def snapshot_dict(snapshot: Any) -> dict[str, Any]:
    """``snapshot.dump_dict()``, with every widget converted once.

    Evidently's full form holds each widget twice (in its metric's result and in the report's
    list); its pydantic-v1 ``dict()`` walks every number of every figure both times, which was
    most of the cost. The two copies are the same objects, so each is converted once here and
    placed twice. ``tests/integration/test_run_report.py`` pins that the result equals
    ``dump_dict()``."""
    converted: dict[int, Any] = {}

    def widgets(items: list[Any] | None) -> list[Any] | None:
        if items is None:
            return None
        for widget in items:
            if id(widget) not in converted:
                converted[id(widget)] = widget.dict()
        return [converted[id(widget)] for widget in items]

    model = snapshot.to_snapshot_model()
    data: dict[str, Any] = model.dict(exclude={"metric_results", "widgets", "tests_widgets"})
    data["metric_results"] = {
        metric_id: {**result.dict(exclude={"widget"}), "widget": widgets(result.widget)}
        for metric_id, result in snapshot.metric_results.items()
    }
    data["widgets"] = widgets(list(snapshot._widgets))
    data["tests_widgets"] = widgets(list(snapshot._tests_widgets))
    return data


def snapshot_bytes(snapshot: Any) -> bytes:
    """The full snapshot as Evidently's own JSON encoder writes it (``Snapshot.dumps``)."""
    from evidently.legacy.utils import NumpyEncoder

    return json.dumps(snapshot_dict(snapshot), cls=NumpyEncoder).encode("utf-8")


def render_html(verified: VerifiedFile) -> str:
    """The report's HTML page from a verified stored snapshot (gzip-compressed JSON)."""
    from evidently.core.report import Snapshot

    try:
        data = json.loads(gzip.decompress(verified.data))
        snapshot = Snapshot.load_dict(data)
    except (OSError, EOFError, ValueError) as exc:
        raise ValueError(
            f"{verified.name} ({verified.path}) is not a gzip-compressed Evidently snapshot: {exc}"
        ) from exc
    return str(snapshot.get_html_str(as_iframe=False))
