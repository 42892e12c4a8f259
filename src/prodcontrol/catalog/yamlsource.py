"""Load YAML into plain data while remembering the line of every key and list item.

pydantic reports a problem as a location tuple such as ``("controls", 3, "thresholds", "warn")``;
:class:`LineIndex` turns that back into the line the user should open. Duplicate keys, which
PyYAML would silently overwrite, are reported as problems instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prodcontrol.errors import Problem

Loc = tuple[str | int, ...]


@dataclass
class LineIndex:
    """Maps a location inside a loaded document to its 1-based line number."""

    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, data: Any, loc: Loc) -> int:
        """Line of the deepest part of ``loc`` that exists in ``data``.

        Parts that are not in the data (pydantic adds union tags such as ``"drift"``) are
        skipped, so a location always lands on the nearest line the user wrote.
        """
        found: Loc = ()
        node = data
        path: Loc = ()
        for part in loc:
            if isinstance(node, dict) and part in node:  # noqa: SIM114 (separate for mypy narrowing)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                continue
            path = (*path, part)
            found = path
        return self.lines.get(found, self.lines.get((), 1))


@dataclass
class YamlDocument:
    """One loaded file: its data, where each part came from, and the problems found loading it."""

    path: Path
    data: Any
    index: LineIndex
    problems: list[Problem]

    def problem(self, loc: Loc, field_name: str, message: str) -> Problem:
        return Problem(str(self.path), self.index.line_of(self.data, loc), field_name, message)


def load_yaml(path: Path) -> YamlDocument:
    """Parse ``path``; syntax errors become a :class:`Problem` with the parser's line and column."""
    index = LineIndex()
    problems: list[Problem] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(str(path), 0, "", f"cannot read the file ({exc.strerror})"))
        return YamlDocument(path, None, index, problems)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        column = f", column {mark.column + 1}" if mark else ""
        what = exc.problem or "invalid YAML"
        problems.append(
            Problem(str(path), line, "", f"YAML syntax error{column}: {what}; fix the syntax")
        )
        return YamlDocument(path, None, index, problems)
    if node is None:
        return YamlDocument(path, None, index, problems)
    data = _convert(node, (), index, path, problems)
    return YamlDocument(path, data, index, problems)


def _convert(
    node: yaml.Node, loc: Loc, index: LineIndex, path: Path, problems: list[Problem]
) -> Any:
    index.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, problems)
            if isinstance(key, list | dict):
                problems.append(
                    Problem(str(path), key_node.start_mark.line + 1, "", "keys must be scalars")
                )
                continue
            child: Loc = (*loc, key)
            if key in result:
                problems.append(
                    Problem(
                        str(path),
                        key_node.start_mark.line + 1,
                        _dotted(child),
                        f"duplicate key '{key}' (first at line {index.lines[child]}); "
                        "keep one of them",
                    )
                )
                continue
            index.lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, child, index, path, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for position, item in enumerate(node.value):
            child = (*loc, position)
            index.lines[child] = item.start_mark.line + 1
            items.append(_convert(item, child, index, path, problems))
        return items
    return _scalar(node, path, problems)


def _scalar(node: yaml.Node, path: Path, problems: list[Problem]) -> Any:
    """A scalar as YAML types it; one YAML cannot build (``2026-13-01`` looks like a date but
    is none, an unknown ``!!tag``) stays the text written, so the schema reports it at its line
    with what would be right, instead of a traceback."""
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        if isinstance(node, yaml.ScalarNode) and node.tag.startswith("tag:yaml.org,2002:"):
            return str(node.value)
        problems.append(
            Problem(
                str(path),
                node.start_mark.line + 1,
                "",
                f"cannot read this value ({_first_line(exc)}); write plain YAML: a string, "
                "number, date, list or mapping",
            )
        )
        return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
