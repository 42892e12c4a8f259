"""Counters of refused requests, per process, in Prometheus' text format at ``GET /metrics``.

Unauthenticated noise (unsigned Slack requests, bad web credentials) is counted here instead
of being written to the evidence chain.
"""

from __future__ import annotations

import threading
from collections import Counter

counters: Counter[tuple[str, str]] = Counter()
_lock = threading.Lock()


def count(name: str, reason: str) -> None:
    with _lock:
        counters[(name, reason)] += 1


def value(name: str, reason: str) -> int:
    return counters[(name, reason)]


def exposition() -> str:
    with _lock:
        items = sorted(counters.items())
    lines = []
    for name in sorted({n for (n, _), _ in items}):
        lines.append(f"# TYPE prodcontrol_{name}_total counter")
        lines += [
            f'prodcontrol_{name}_total{{reason="{reason}"}} {total}'
            for (n, reason), total in items
            if n == name
        ]
    return "\n".join(lines) + "\n"
