"""A newcomer's mistakes, each caught by ``prodcontrol validate`` with exit 2 and ``file:line``.

Each test copies the example inventory, makes one mistake the way people make it, runs the CLI
and checks the exact line and message. The last test mutates the inventory at random
(Hypothesis) and asserts the same contract: exit 2, ``file:line``, never a traceback.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prodcontrol.cli import output
from prodcontrol.cli.app import run

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "control_catalog"
PROBLEM = re.compile(r"^(?P<file>\S+\.yaml):(?P<line>\d+): (?P<rest>.+)$")


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output.console, "_width", 200)


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    target = tmp_path / "inventory"
    shutil.copytree(ROOT / "examples", target)
    return target


def validate(
    inventory: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, list[str]]:
    code = run(["validate", "--catalog", str(CATALOG), "--inventory", str(inventory), *extra])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, [line for line in captured.err.splitlines() if PROBLEM.match(line)]


def edit(path: Path, change: Callable[[str], str]) -> int:
    """Apply ``change`` to the file; the 1-based line of the first changed line."""
    before = path.read_text()
    after = change(before)
    assert after != before
    path.write_text(after)
    for number, (old, new) in enumerate(
        zip(before.splitlines(), after.splitlines(), strict=False), 1
    ):
        if old != new:
            return number
    return len(after.splitlines())


def one_problem(lines: list[str], path: Path, line: int) -> str:
    assert len(lines) == 1, lines
    found = PROBLEM.match(lines[0])
    assert found and found["file"] == str(path) and int(found["line"]) == line, lines[0]
    return found["rest"]


def test_typo_in_a_local_path_is_a_configuration_error(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("data/churn-current.csv", "data/churn-curent.csv"))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2
    assert rest.startswith("models[churn-classifier].data.current.path: no such file")
    assert "did you mean 'churn-current.csv'?" in rest


def test_typo_in_a_declared_column(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("[tenure_months,", "[tenure_month,"))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and "numerical feature 'tenure_month' is not in" in rest
    assert "did you mean 'tenure_months'?" in rest


def test_prediction_column_in_neither_file(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = inventory / "models.yaml"
    line = edit(
        models, lambda t: t.replace("prediction_column: prediction", "prediction_column: score", 1)
    )
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and rest.startswith("models[churn-classifier].data.prediction_column:")
    assert "'score' is not in the reference data" in rest and "the current data" in rest


def test_text_column_declared_numerical(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = inventory / "models.yaml"
    before = (
        "[tenure_months, monthly_charges, support_calls]\n      categorical: [contract, region]"
    )
    after = "[tenure_months, monthly_charges, support_calls, contract]\n      categorical: [region]"
    line = edit(models, lambda t: t.replace(before, after))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and "'contract' is declared numerical but holds categorical values" in rest


def test_target_listed_as_a_feature(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("[tenure_months,", "[churned, tenure_months,"))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and rest == (
        "models[churn-classifier].data.numerical: 'churned' is the target_column and is also "
        "listed as a feature; the target is never an input feature: remove it from data.numerical"
    )


def test_impossible_date(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("last_review: 2026-06-01", "last_review: 2026-13-01"))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and rest == (
        "models[churn-classifier].last_review: '2026-13-01' is not a date (month value is "
        "outside expected range of 1-12); write dates as YYYY-MM-DD, e.g. 2026-12-01"
    )


def test_impossible_date_does_not_crash_check(
    inventory: Path,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    edit(
        inventory / "models.yaml",
        lambda t: t.replace("review_date: 2027-03-31", "review_date: 2027-02-30"),
    )
    code = run(
        ["check", "churn-classifier", "--catalog", str(CATALOG), "--inventory", str(inventory)]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "'2027-02-30' is not a date" in err


def test_tier_in_the_wrong_case(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("tier: high\n", "tier: High\n", 1))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and rest == (
        "models[fraud-detector].tier: 'High' is not a valid id: use lower-case letters, digits, "
        "'-', '_' and '.', starting with a letter or digit (did you mean 'high'?)"
    )


def test_unknown_tier_and_stage_enum(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    edit(models, lambda t: t.replace("tier: high\n", "tier: hihg\n", 1))
    edit(models, lambda t: t.replace("stage: experimentation", "stage: Experiment"))
    code, lines = validate(inventory, capsys)
    assert code == 2
    assert any(
        "unknown tier 'hihg' (did you mean 'high'?); use one of: high, low, medium" in x
        for x in lines
    )
    assert any(
        "'Experiment' is not one of: experimentation, pilot, production, retired "
        "(did you mean 'experimentation'?)" in x
        for x in lines
    )


def test_number_that_is_not_a_number(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = inventory / "models.yaml"
    line = edit(models, lambda t: t.replace("target: 40,", "target: forty,"))
    code, lines = validate(inventory, capsys)
    rest = one_problem(lines, models, line)
    assert code == 2 and "use_case.expected_value.target: Input should be a valid number" in rest
    assert "(got 'forty')" in rest


def test_unknown_key_and_owner_get_a_suggestion(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = inventory / "models.yaml"
    fraud_owners = "business_outcome: amara\n      data_domain: farah"
    edit(models, lambda t: t.replace(fraud_owners, fraud_owners.replace("amara", "amra")))
    edit(models, lambda t: t.replace("serving_alias: champion", "serving_alais: champion", 1))
    code, lines = validate(inventory, capsys)
    assert code == 2
    assert any("unknown person 'amra' (did you mean 'amara'?)" in x for x in lines)
    assert any("unknown key 'serving_alais' (did you mean 'serving_alias'?)" in x for x in lines)


def test_probe_checks_mlflow_sources(
    inventory: Path,
    capsys: pytest.CaptureFixture[str],
    mlflow_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--probe`` loads an MLflow artifact source and checks its columns like a local file."""
    import uuid

    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("PRODCONTROL_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("PRODCONTROL_STATE_DIR", str(tmp_path / "state"))
    client = MlflowClient(tracking_uri=mlflow_uri)
    run_id = client.create_run(
        client.create_experiment(f"probe-{uuid.uuid4().hex[:6]}")
    ).info.run_id
    frame = pd.read_csv(inventory / "data" / "churn-reference.csv").rename(
        columns={"support_calls": "calls"}
    )
    frame.to_parquet(tmp_path / "reference.parquet")
    client.log_artifact(run_id, str(tmp_path / "reference.parquet"), artifact_path="data")
    models = inventory / "models.yaml"
    line = edit(
        models,
        lambda t: t.replace(
            "reference: {type: file, path: data/churn-reference.csv}",
            "reference: {type: mlflow_artifact, artifact_path: data/reference.parquet, "
            f"run_id: {run_id}}}",
        ),
    )
    code, lines = validate(inventory, capsys)
    assert code == 0, lines
    code, lines = validate(inventory, capsys, "--probe")
    assert code == 2 and len(lines) == 1
    assert f"models.yaml:{line + 4}:" in lines[0]
    assert "numerical feature 'support_calls' is not in the reference data (runs:/" in lines[0]


# --------------------------------------------------------------------------- Hypothesis

EXAMPLES_MODELS = (ROOT / "examples" / "models.yaml").read_text()
EXAMPLES_PEOPLE = (ROOT / "examples" / "people.yaml").read_text()


def _scalars(text: str) -> list[tuple[tuple[str, ...], yaml.ScalarNode]]:
    """Every scalar value in the file with the keys that lead to it."""
    found: list[tuple[tuple[str, ...], yaml.ScalarNode]] = []

    def walk(node: yaml.Node, keys: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                walk(value, (*keys, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                walk(item, keys)
        elif isinstance(node, yaml.ScalarNode):
            found.append((keys, node))

    walk(yaml.compose(text), ())
    return found


MODEL_SCALARS = _scalars(EXAMPLES_MODELS)
PEOPLE_SCALARS = _scalars(EXAMPLES_PEOPLE)
DATES = ("last_review", "review_date")
ENUMS = ("tier", "stage", "tier_requested", "serving_alias", "type", "format")
NUMBERS = ("target",)
PEOPLE_IDS = (
    "business_outcome",
    "data_domain",
    "model_behaviour",
    "workflow_impact",
    "operating_risk",
)

bad_dates = st.one_of(
    st.builds("2026-{:02d}-{:02d}".format, st.integers(13, 99), st.integers(1, 28)),
    st.builds("2026-{:02d}-{:02d}".format, st.integers(1, 12), st.integers(32, 99)),
    st.sampled_from(["2026-02-30", "2027-04-31", "31/12/2026", "tomorrow", "2026-1-1x"]),
)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
bad_enums = st.builds(lambda w: w.capitalize() + "X", words)
bad_numbers = st.builds(lambda w: "n" + w, words)
bad_people = st.builds(lambda w: "nobody-" + w, words)
junk = st.text(max_size=12).map(lambda t: json.dumps("X" + t))  # any text; never an id or enum


def _mutations(
    scalars: list[tuple[tuple[str, ...], yaml.ScalarNode]],
) -> st.SearchStrategy[tuple[yaml.ScalarNode, str]]:
    """A scalar and a value that cannot be valid there."""
    options = []
    for keys, node in scalars:
        last = keys[-1] if keys else ""
        if last in DATES:
            options.append(st.tuples(st.just(node), bad_dates))
        elif last in ENUMS:
            options.append(st.tuples(st.just(node), st.one_of(bad_enums, junk)))
        elif last in NUMBERS:
            options.append(st.tuples(st.just(node), bad_numbers))
        elif last in PEOPLE_IDS:
            options.append(st.tuples(st.just(node), bad_people))
        elif last in ("slack_id", "email"):
            options.append(st.tuples(st.just(node), st.builds(lambda w: "@" + w + "@", words)))
    return st.one_of(*options)


def _replace(text: str, node: yaml.ScalarNode, value: str) -> str:
    return text[: node.start_mark.index] + value + text[node.end_mark.index :]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    which=st.sampled_from(["models.yaml", "people.yaml"]),
    models_change=_mutations(MODEL_SCALARS),
    people_change=_mutations(PEOPLE_SCALARS),
)
def test_any_bad_value_is_exit_2_with_file_and_line(
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    which: str,
    models_change: tuple[yaml.ScalarNode, str],
    people_change: tuple[yaml.ScalarNode, str],
) -> None:
    inventory = tmp_path_factory.mktemp("mutated")
    shutil.copytree(ROOT / "examples" / "data", inventory / "data")
    node, value = models_change if which == "models.yaml" else people_change
    source = EXAMPLES_MODELS if which == "models.yaml" else EXAMPLES_PEOPLE
    other = EXAMPLES_PEOPLE if which == "models.yaml" else EXAMPLES_MODELS
    (inventory / which).write_text(_replace(source, node, value))
    (inventory / ({"models.yaml", "people.yaml"} - {which}).pop()).write_text(other)
    code, lines = validate(inventory, capsys)
    assert code == 2, f"{which}: {value!r} at line {node.start_mark.line + 1} passed validate"
    assert lines, "no file:line problem printed"
    assert all(int(PROBLEM.match(x)["line"]) > 0 for x in lines)  # type: ignore[index]
    assert any(PROBLEM.match(x)["file"].endswith(which) for x in lines)  # type: ignore[index]
