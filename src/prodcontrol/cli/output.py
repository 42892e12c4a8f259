"""How every command prints: a rich table for people, the same rows as JSON with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


NARROW = 80
"""Tables are laid out for an 80-column terminal unless ``--wide`` asks for every column."""
SHORT_ID = 8
"""Ids are shown by their first 8 characters (longer where two would collide); every command
that takes an id accepts such a prefix (:mod:`prodcontrol.cli.ids`)."""


def emit(
    rows: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    title: str = "",
    columns: Sequence[str] = (),
    narrow: Sequence[str] = (),
    wide: bool = False,
) -> None:
    """Print ``rows`` as a table, or as a JSON array when ``as_json`` (always every field).

    ``narrow`` is the column set that reads at 80 columns; ``wide`` shows ``columns`` (or every
    field) instead, in a table as wide as its content.
    """
    if as_json:
        typer.echo(json.dumps(list(rows), indent=2, default=str, ensure_ascii=False))
        return
    heads = list(columns) or (list(rows[0]) if rows else [])
    if narrow and not wide:
        heads = list(narrow)
    if wide:
        _wide_table(rows, heads, title)
        return
    table = Table(title=title or None, show_lines=False, header_style="bold")
    for position, head in enumerate(heads):
        # the first column names the thing; never cut it
        table.add_column(head.replace("_", " "), no_wrap=position == 0)
    for row in rows:
        table.add_row(*(_cell(row.get(h)) for h in heads))
    console.print(table)


def _wide_table(rows: Sequence[dict[str, Any]], heads: list[str], title: str) -> None:
    table = Table(title=title or None, show_lines=False, header_style="bold")
    for head in heads:
        table.add_column(head.replace("_", " "), no_wrap=True, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(h)) for h in heads))
    Console(width=max(console.width, 400), soft_wrap=False).print(table)


def short_ids(ids: Sequence[str], size: int = SHORT_ID) -> dict[str, str]:
    """Each id's shortest prefix of at least ``size`` characters that no other id shares."""
    unique = list(dict.fromkeys(ids))
    shown: dict[str, str] = {}
    for ident in unique:
        length = size
        while length < len(ident) and any(
            o != ident and o.startswith(ident[:length]) for o in unique
        ):
            length += 1
        shown[ident] = ident[:length]
    return shown


def emit_object(obj: dict[str, Any], *, as_json: bool, title: str = "") -> None:
    if as_json:
        typer.echo(json.dumps(obj, indent=2, default=str, ensure_ascii=False))
        return
    table = Table(title=title or None, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in obj.items():
        table.add_row(key.replace("_", " "), _cell(value))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def verdict_label(verdict: str) -> str:
    """How a verdict reads in a table: ``not_applicable`` as ``not applicable``."""
    return verdict.replace("_", " ")


def problem_lines(lines: Sequence[str]) -> None:
    """Problems go to stderr unwrapped, one per line, so editors can jump to ``file:line``."""
    for line in lines:
        sys.stderr.write(line + "\n")
