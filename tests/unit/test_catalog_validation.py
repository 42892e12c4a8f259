"""Validation of the files a user writes: each bad input names file:line and the fix."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from prodcontrol.catalog.loader import default_catalog_dir
from prodcontrol.catalog.validate import load_config
from prodcontrol.errors import ConfigError, Problem

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    catalog, inventory = tmp_path / "catalog", tmp_path / "inventory"
    shutil.copytree(default_catalog_dir(), catalog)
    shutil.copytree(ROOT / "examples", inventory)
    return catalog, inventory


def problems_after(
    dirs: tuple[Path, Path], file: str, edit: Callable[[str], str]
) -> tuple[Path, list[Problem]]:
    catalog, inventory = dirs
    path = (catalog if (catalog / file).exists() else inventory) / file
    before = path.read_text()
    after = edit(before)
    assert after != before, "the edit did not change the file"
    path.write_text(after)
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, inventory)
    return path, caught.value.problems


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[nth - 1]


def test_bundled_catalog_and_examples_are_valid() -> None:
    config = load_config(default_catalog_dir(), ROOT / "examples")
    assert set(config.catalog.tiers) == {"low", "medium", "high"}
    assert {m.tier for m in config.inventory.models.values()} >= {"low", "medium", "high"}


def test_every_control_cites_a_clause_and_required_clauses_exist() -> None:
    config = load_config(default_catalog_dir(), ROOT / "examples")
    clauses = config.catalog.clause_ids()
    for art in (9, 12, 14, 17, 19, 26, 72, 73):
        assert f"eu-ai-act:art-{art}" in clauses
    for clause in ("6.1", "8", "9", "10"):
        assert f"iso-42001:{clause}" in clauses
    assert any(c.startswith("sr-26-2:") for c in clauses)
    for prefix in ("GOVERN", "MEASURE", "MANAGE"):
        assert any(c.startswith(f"nist-ai-rmf:{prefix}") for c in clauses)
    for control in config.catalog.controls.values():
        assert control.clauses and set(control.clauses) <= clauses


def test_yaml_syntax_error_gives_line_and_column(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "models.yaml", lambda t: t.replace("tier: low", "tier: [low", 1)
    )
    (problem,) = [p for p in problems if p.file == str(path)]
    assert problem.line > 0 and "column" in problem.message


def test_unknown_key_lists_the_allowed_keys(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "models.yaml", lambda t: t.replace("    tier: low", "    tier: low\n    teir: x", 1)
    )
    (problem,) = problems
    assert (problem.file, problem.line) == (str(path), line_of(path, "teir: x"))
    assert "unknown key 'teir'" in problem.message and "tier" in problem.message


def test_wrong_type(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "tiers.yaml", lambda t: t.replace("max_rows: 10000", "max_rows: lots", 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, "max_rows: lots")
    assert "max_rows" in problem.field and "integer" in problem.message


def test_missing_owner_on_production_model_is_a_readiness_failure(
    dirs: tuple[Path, Path],
) -> None:
    path, problems = problems_after(
        dirs, "models.yaml", lambda t: t.replace("      operating_risk: dana\n", "", 1)
    )
    (problem,) = problems
    assert problem.file == str(path)
    assert "readiness" in problem.message and "operating_risk" in problem.message
    assert problem.line == line_of(path, "owners:")  # the first model's owners block


def test_unknown_tier(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "models.yaml", lambda t: t.replace("tier: high", "tier: extreme", 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, "tier: extreme")
    assert "unknown tier 'extreme'" in problem.message and "low, medium" in problem.message


def test_unknown_control_id_in_a_tier(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "tiers.yaml", lambda t: t.replace("[dataset-drift,", "[dataset-drfit,", 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, "dataset-drfit")
    assert "unknown control 'dataset-drfit'" in problem.message


def test_unknown_clause_id(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "controls.yaml", lambda t: t.replace("eu-ai-act:art-72,", "eu-ai-act:art-99,", 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, "art-99")
    assert "unknown clause 'eu-ai-act:art-99'" in problem.message


def test_duplicate_model_name(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "models.yaml", lambda t: t.replace("name: pricing-experiment", "name: fraud-detector")
    )
    (problem,) = problems
    assert problem.line == line_of(path, "name: fraud-detector", nth=2)
    assert "duplicate name 'fraud-detector'" in problem.message
    assert f"first at line {line_of(path, 'name: fraud-detector')}" in problem.message


def test_bad_cron(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "tiers.yaml", lambda t: t.replace('"0 5 * * *"', '"0 25 * * *"', 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, '"0 25 * * *"')
    assert "schedule" in problem.field and "cron" in problem.message.lower()


def test_negative_threshold(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs,
        "controls.yaml",
        lambda t: t.replace("{warn: 0.2, fail: 0.5", "{warn: -0.2, fail: 0.5"),
    )
    (problem,) = problems
    assert problem.line == line_of(path, "warn: -0.2")
    assert "warn" in problem.field and "greater than or equal to 0" in problem.message


def test_warn_beyond_fail(dirs: tuple[Path, Path]) -> None:
    _, problems = problems_after(
        dirs, "controls.yaml", lambda t: t.replace("{warn: 0.2, fail: 0.5", "{warn: 0.7, fail: 0.5")
    )
    (problem,) = problems
    assert "must not be above fail" in problem.message


def test_unknown_person_and_role_not_held(dirs: tuple[Path, Path]) -> None:
    def edit(text: str) -> str:
        return text.replace("business_outcome: hana", "business_outcome: nobody", 1).replace(
            "data_domain: bruno", "data_domain: chen", 1
        )

    _, problems = problems_after(dirs, "models.yaml", edit)
    messages = sorted(p.message for p in problems)
    assert len(messages) == 2
    assert "does not hold the role data_domain" in messages[0]
    assert "unknown person 'nobody'" in messages[1]


def test_two_person_gate_needs_separation_of_duties(dirs: tuple[Path, Path]) -> None:
    _, problems = problems_after(
        dirs,
        "tiers.yaml",
        lambda t: t.replace("separation_of_duties: true", "separation_of_duties: false"),
    )
    (problem,) = problems
    assert "two_person gate needs separation_of_duties" in problem.message


def test_every_problem_at_once_across_files(dirs: tuple[Path, Path]) -> None:
    catalog, inventory = dirs
    tiers = catalog / "tiers.yaml"
    tiers.write_text(tiers.read_text().replace("max_rows: 10000", "max_rows: -1", 1))
    models = inventory / "models.yaml"
    text = models.read_text().replace("stage: production", "stage: prod", 1)
    models.write_text(text.replace("tier: high", "tier: extreme", 1))
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, inventory)
    files = sorted(Path(p.file).name for p in caught.value.problems)
    assert files == ["models.yaml", "tiers.yaml"]


def test_duplicate_yaml_key_is_reported(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs,
        "models.yaml",
        lambda t: t.replace("    tier: low", "    tier: low\n    tier: high", 1),
    )
    assert any(p.line == line_of(path, "tier: high") and "duplicate" in p.message for p in problems)


def test_missing_catalog_file(dirs: tuple[Path, Path]) -> None:
    catalog, inventory = dirs
    (catalog / "frameworks.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_config(catalog, inventory)
    assert any("frameworks.yaml" in p.message for p in caught.value.problems)


def test_a_gate_opening_on_error_may_not_time_out_to_accept(dirs: tuple[Path, Path]) -> None:
    """The medium tier used to open gates on error and accept on timeout: two quiet days
    turned a control that never ran into an accepted one."""
    path, problems = problems_after(
        dirs,
        "tiers.yaml",
        lambda t: t.replace("opens_on: [fail]", "opens_on: [fail, error]", 1),
    )
    (problem,) = problems
    assert problem.field == "tiers.medium.gate.on_timeout"
    assert problem.line == line_of(path, "on_timeout: accept", nth=2)
    assert "may not time out to accept" in problem.message


def test_report_columns_policy_names_its_choices(dirs: tuple[Path, Path]) -> None:
    path, problems = problems_after(
        dirs, "tiers.yaml", lambda t: t.replace("columns: flagged,", "columns: drifted,", 1)
    )
    (problem,) = problems
    assert problem.line == line_of(path, "columns: drifted,")
    assert "columns" in problem.field
    assert "is not one of: all, flagged" in problem.message
