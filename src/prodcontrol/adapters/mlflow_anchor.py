"""Anchors in MLflow: each anchored chain head becomes a run, tagged with the entry, its hash
and the head's signature.

The MLflow tracking server is run by other people than the evidence database, usually with its
own access control, so a database rewritten after the fact disagrees with the runs here. Runs
are never updated: every anchoring is a run of its own. Reading searches deleted runs too, so a
run someone deleted to hide an anchor is reported instead of skipped.

Several evidence stores may anchor into one tracking server (two deployments, staging and
production). Each anchor run carries its store's *scope* (``evidence_anchor_scope``, by default
the evidence database URL without its password) and a store reads only its own, plus runs
written before scopes existed. The scope comes from the settings, never from the database, so
an operator who rewrites the database cannot detach the anchors that contradict it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prodcontrol.adapters.mlflow import artifact_location
from prodcontrol.errors import UnreachableError
from prodcontrol.evidence.anchor import Anchor, FileAnchors
from prodcontrol.ports import AnchorSink
from prodcontrol.settings import Settings

EXPERIMENT = "prodcontrol-evidence-anchors"
TAG = "prodcontrol.anchor."
PAGE = 1000


class MlflowAnchors:
    """An :class:`AnchorSink` over an MLflow tracking server (or any MLflow tracking URI)."""

    def __init__(
        self, tracking_uri: str, experiment: str = EXPERIMENT, scope: str | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.scope = scope
        self._client: Any = None

    @property
    def name(self) -> str:
        return f"mlflow {self.tracking_uri} experiment {self.experiment}"

    def _mlflow(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _experiment_id(self, create: bool) -> str | None:
        client = self._mlflow()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        if not create:
            return None
        where = artifact_location(self.tracking_uri, self.experiment)
        return str(client.create_experiment(self.experiment, artifact_location=where))

    def write_anchor(self, anchor: Anchor) -> None:
        try:
            experiment_id = self._experiment_id(create=True)
            client = self._mlflow()
            run = client.create_run(
                experiment_id,
                run_name=f"anchor-{anchor.day}-{anchor.seq}",
                tags={
                    TAG + "day": anchor.day.isoformat(),
                    TAG + "seq": str(anchor.seq),
                    TAG + "hash": anchor.hash,
                    TAG + "written_at": anchor.written_at.isoformat(),
                    TAG + "key_id": anchor.key_id or "",
                    TAG + "signature": anchor.signature or "",
                    **({TAG + "scope": self.scope} if self.scope else {}),
                },
            )
            client.set_terminated(run.info.run_id)
        except Exception as exc:
            raise self._unreachable(exc) from exc

    def read_anchors(self) -> list[Anchor]:
        """Every anchor run, deleted ones included (``deleted=True``)."""
        from mlflow.entities import ViewType

        try:
            client = self._mlflow()
            found = client.get_experiment_by_name(self.experiment)
            if found is None:
                return []
            gone = found.lifecycle_stage == "deleted"
            anchors: list[Anchor] = []
            token = None
            while True:
                page = client.search_runs(
                    [str(found.experiment_id)],
                    run_view_type=ViewType.ALL,
                    max_results=PAGE,
                    page_token=token,
                )
                anchors += [self._anchor(run, gone) for run in page if self._ours(run)]
                token = page.token
                if not token:
                    return anchors
        except Exception as exc:
            raise self._unreachable(exc) from exc

    def _ours(self, run: Any) -> bool:
        """This store's anchor: same scope, or written before scopes (no scope tag)."""
        scope = run.data.tags.get(TAG + "scope")
        return scope is None or self.scope is None or scope == self.scope

    def _anchor(self, run: Any, experiment_deleted: bool) -> Anchor:
        tags: dict[str, str] = run.data.tags
        written = tags.get(TAG + "written_at")
        return Anchor(
            day=date.fromisoformat(tags[TAG + "day"]),
            seq=int(tags[TAG + "seq"]),
            hash=tags[TAG + "hash"],
            written_at=datetime.fromisoformat(written) if written else datetime.now(UTC),
            key_id=tags.get(TAG + "key_id") or None,
            signature=tags.get(TAG + "signature") or None,
            where=self.name,
            ref=f"run {run.info.run_id}",
            deleted=experiment_deleted or run.info.lifecycle_stage == "deleted",
        )

    def _unreachable(self, exc: Exception) -> UnreachableError:
        return UnreachableError(
            "MLflow",
            self.tracking_uri,
            f"{type(exc).__name__}: {exc}",
            "check PRODCONTROL_MLFLOW_TRACKING_URI and that the tracking server is up",
        )


def anchor_sinks(settings: Settings) -> list[AnchorSink]:
    """The anchor file when ``evidence_anchor_file`` is set, and MLflow when a tracking server
    is (``mlflow_tracking_uri``; the embedded SQLite default is the operator's own disk)."""
    sinks: list[AnchorSink] = []
    if settings.evidence_anchor_file is not None:
        sinks.append(FileAnchors(settings.evidence_anchor_file))
    if settings.mlflow_tracking_uri:
        sinks.append(MlflowAnchors(settings.mlflow_tracking_uri, scope=anchor_scope(settings)))
    return sinks


def anchor_scope(settings: Settings) -> str:
    """``evidence_anchor_scope``, or the evidence database URL without its password."""
    if settings.evidence_anchor_scope:
        return settings.evidence_anchor_scope
    from sqlalchemy.engine import URL, make_url

    url = make_url(settings.resolved_database_url)
    bare = URL.create(
        url.drivername, url.username, None, url.host, url.port, url.database, url.query
    )
    return bare.render_as_string(hide_password=False)
