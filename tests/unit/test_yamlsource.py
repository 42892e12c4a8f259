"""The YAML loader keeps line numbers and turns syntax errors and duplicate keys into problems."""

from __future__ import annotations

from pathlib import Path

from prodcontrol.catalog.types import format_duration, parse_duration
from prodcontrol.catalog.yamlsource import load_yaml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return path


def test_lines_follow_keys_and_list_items(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "a:\n  - id: x\n    b: 1\n  - id: y\n    b:\n      c: 2\n"))
    assert doc.problems == []
    assert doc.index.line_of(doc.data, ("a", 1, "b", "c")) == 6
    assert doc.index.line_of(doc.data, ("a", 0, "b")) == 3
    # a part that is not in the data (a pydantic union tag) is skipped, not fatal
    assert doc.index.line_of(doc.data, ("a", 1, "drift", "b")) == 5


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    (problem,) = doc.problems
    assert problem.line >= 2
    assert "column" in problem.message and "YAML syntax error" in problem.message


def test_duplicate_key_is_a_problem_not_an_overwrite(tmp_path: Path) -> None:
    doc = load_yaml(write(tmp_path, "a: 1\nb: 2\na: 3\n"))
    (problem,) = doc.problems
    assert problem.line == 3
    assert "duplicate key 'a'" in problem.message and "line 1" in problem.message
    assert doc.data == {"a": 1, "b": 2}


def test_missing_file_is_a_problem(tmp_path: Path) -> None:
    doc = load_yaml(tmp_path / "nope.yaml")
    assert doc.data is None and "cannot read" in doc.problems[0].message


def test_duration_round_trip() -> None:
    assert parse_duration("1d12h").total_seconds() == 36 * 3600
    assert format_duration(parse_duration("90m")) == "1h30m"
    assert parse_duration(45).total_seconds() == 45
