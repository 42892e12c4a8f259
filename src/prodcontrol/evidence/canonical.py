"""Canonical JSON: the one byte form of every document that is hashed or signed.

Format 2 (the current one) is RFC 8785, the JSON Canonicalization Scheme, through the
``rfc8785`` package: keys sorted by UTF-16 code units, no whitespace, numbers in their shortest
ECMAScript form (``1.0`` is ``1``), UTF-8. Any language with an RFC 8785 library recomputes the
same bytes, which is what lets a third party re-verify a pack without prodcontrol.

Format 1 is what stores written before RFC 8785 used (Python's ``json.dumps`` with sorted keys
and no spaces). It is kept only to verify those older entries: every entry records its format
and formats never go back along the chain, see :mod:`prodcontrol.evidence.chain`.

Instants are spelled one way before either: ``2026-11-02T09:00:00.000000Z``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import rfc8785

from prodcontrol.clock import ensure_utc

CURRENT_FORMAT = 2
LEGACY_FORMAT = 1
FORMATS = (LEGACY_FORMAT, CURRENT_FORMAT)


def format_datetime(value: datetime) -> str:
    """The one textual form of an instant used in hashes: ``2026-11-02T09:00:00.000000Z``."""
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    """``value`` with datetimes as text and tuples as lists: only JSON types are left."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 bytes of ``value`` (NaN, infinities and integers beyond 2**53 are refused)."""
    try:
        return rfc8785.dumps(_plain(value))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"cannot be part of evidence: {exc}") from None


def canonical_json(value: Any) -> str:
    """RFC 8785 text of ``value``: two writers of the same value always spell it the same way."""
    return canonical_bytes(value).decode("utf-8")


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    raise TypeError(f"{type(value).__name__} cannot be part of evidence; convert it to JSON first")


def legacy_json(value: Any) -> str:
    """Format 1, for entries written before RFC 8785 (sorted keys, Python number spelling)."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )


def encode(value: Any, fmt: int) -> str:
    """The canonical text of ``value`` in chain format ``fmt``."""
    if fmt == CURRENT_FORMAT:
        return canonical_json(value)
    if fmt == LEGACY_FORMAT:
        return legacy_json(value)
    raise ValueError(f"unknown evidence format {fmt}; this prodcontrol knows {FORMATS}")
