"""Server-side HTML: one Jinja2 environment for the web pages and the evidence pack's index.

Templates live in ``web/templates`` inside the package, so the wheel carries them. Autoescape is
on: everything shown comes from YAML files and the evidence store, neither of which is trusted
to be HTML.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from prodcontrol.clock import ensure_utc
from prodcontrol.evidence.pack import PackContents

TEMPLATES = Path(__file__).resolve().parent / "templates"


def when(value: datetime | None) -> str:
    return "-" if value is None else ensure_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["number"] = number
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def render_pack_index(contents: PackContents) -> str:
    """``index.html`` of an evidence pack: everything inline, readable with no network."""
    return render("pack_index.html", pack=contents, css=(TEMPLATES / "style.css").read_text())
