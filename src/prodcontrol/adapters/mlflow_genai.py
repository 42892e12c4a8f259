"""MLflow 3 GenAI evaluations and trace feedback of a model version
(:class:`~prodcontrol.ports.GenAIEvaluations`).

How the serving version's evaluations are found, using MLflow's own links only:

1. the version's LoggedModel: ``ModelVersion.model_id``, else the ``models:/m-...`` source
   the version was registered from (``mlflow.register_model(logged_model.model_uri, ...)``);
2. the experiment: the one the inventory names (``genai.experiment``), else the
   LoggedModel's own;
3. the traces MLflow links to that LoggedModel (trace metadata ``mlflow.modelId``, written by
   ``mlflow.genai.evaluate(..., model_id=...)`` for every evaluated row and by
   ``mlflow.set_active_model(model_id=...)`` for served requests) whose time falls in the
   window, with their assessments (scorer results of the evaluation, ``mlflow.log_feedback``);
4. a trace belongs to an evaluation when its ``mlflow.sourceRun`` is a run tagged
   ``mlflow.runType=genai_evaluate``; any other trace is a served one.

Overridden assessments (``valid`` false) are left out: their replacement counts instead.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prodcontrol.adapters.mlflow import MlflowAdapter
from prodcontrol.errors import UsageError
from prodcontrol.ports import Assessment, Assessments, ModelVersionRef

EVALUATE_RUN_TYPE = "genai_evaluate"
PAGE = 500


def logged_model_id(model_id: str | None, source: str | None) -> str | None:
    """The LoggedModel behind a version: its ``model_id``, else a ``models:/m-...`` source."""
    if model_id:
        return model_id
    if source and source.startswith("models:/m-"):
        return source.removeprefix("models:/").split("/")[0]
    return None


def _value(raw: Any) -> bool | float | str | None:
    if raw is None or isinstance(raw, bool | float | str):
        return raw
    if isinstance(raw, int):
        return float(raw)
    return str(raw)


class MlflowGenAIEvaluations:
    """Reads assessments through ``MlflowClient`` (a tracking server or a local store)."""

    def __init__(self, tracking_uri: str, mlflow: MlflowAdapter | None = None) -> None:
        self.mlflow = mlflow or MlflowAdapter(tracking_uri)
        self.tracking_uri = tracking_uri

    def assessments(
        self,
        version: ModelVersionRef,
        *,
        experiment: str | None,
        since: datetime,
        until: datetime,
        names: list[str],
    ) -> Assessments:
        what = f"GenAI evaluations of {version.model} version {version.version}"
        with self.mlflow.translate_errors(what):
            return self._read(version, experiment, since, until, names)

    def _read(
        self,
        version: ModelVersionRef,
        experiment: str | None,
        since: datetime,
        until: datetime,
        names: list[str],
    ) -> Assessments:
        client = self.mlflow.client
        registered = client.get_model_version(version.model, version.version)
        model_id = logged_model_id(getattr(registered, "model_id", None), registered.source)
        if model_id is None:
            raise UsageError(
                f"version {version.version} of '{version.model}' was not registered from an "
                f"MLflow LoggedModel (its source is {registered.source!r}), so no evaluation "
                "or trace can be linked to it; register it with mlflow.register_model("
                "logged_model.model_uri, name)"
            )
        experiment_id = self._experiment(experiment, model_id)
        traces = self._traces(experiment_id, model_id, since, until)
        runs = self._evaluation_runs(experiment_id, traces)
        wanted = set(names)
        items: list[Assessment] = []
        for trace in traces:
            info = trace.info
            source_run = (info.trace_metadata or {}).get("mlflow.sourceRun")
            for assessment in info.assessments or []:
                if assessment.name not in wanted or assessment.valid is False:
                    continue
                feedback = getattr(assessment, "feedback", None)
                if feedback is None:  # an expectation (ground truth), not a judgement
                    continue
                error = feedback.error
                items.append(
                    Assessment(
                        trace_id=info.trace_id,
                        name=assessment.name,
                        value=_value(feedback.value),
                        error=(error.error_message or error.error_code) if error else None,
                        at=datetime.fromtimestamp(info.request_time / 1000, tz=UTC),
                        evaluation_run=source_run if source_run in runs else None,
                        source_type=str(assessment.source.source_type),
                    )
                )
        return Assessments(
            model_id=model_id,
            experiment_id=experiment_id,
            traces=len(traces),
            evaluation_runs=sorted(runs),
            items=items,
        )

    def _experiment(self, name: str | None, model_id: str) -> str:
        client = self.mlflow.client
        if name is None:
            return str(client.get_logged_model(model_id).experiment_id)
        found = client.get_experiment_by_name(name)
        if found is None:
            raise UsageError(
                f"MLflow at {self.tracking_uri} has no experiment '{name}' (genai.experiment "
                "in models.yaml); name the experiment the model's evaluations are logged to"
            )
        return str(found.experiment_id)

    def _traces(
        self, experiment_id: str, model_id: str, since: datetime, until: datetime
    ) -> list[Any]:
        client = self.mlflow.client
        start, end = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
        quoted = model_id.replace("'", "")
        linked = (
            f"request_metadata.`mlflow.modelId` = '{quoted}' AND "
            f"trace.timestamp_ms >= {start} AND trace.timestamp_ms <= {end}"
        )
        found: list[Any] = []
        token: str | None = None
        while True:
            page = client.search_traces(
                locations=[experiment_id],
                filter_string=linked,
                include_spans=False,
                max_results=PAGE,
                page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _evaluation_runs(self, experiment_id: str, traces: list[Any]) -> set[str]:
        """The source runs of these traces that are ``mlflow.genai.evaluate`` runs."""
        sources = {
            run
            for t in traces
            if (run := (t.info.trace_metadata or {}).get("mlflow.sourceRun")) is not None
        }
        evaluations: set[str] = set()
        for run_id in sorted(sources):
            run = self.mlflow.client.get_run(run_id)
            if run.data.tags.get("mlflow.runType") == EVALUATE_RUN_TYPE:
                evaluations.add(run_id)
        return evaluations
