"""A run report's page, rendered from its stored Evidently snapshot when somebody opens it.

The caller hands over a :class:`~prodcontrol.evidence.integrity.VerifiedFile`: bytes already
hashed and equal to the evidence, so a rewritten snapshot is never rendered. The page (about
4 MB, Evidently's JavaScript inlined) is gzip-compressed once and kept in memory, keyed by the
snapshot's SHA-256: the same bytes always render the same report, so a key can never show
another file's page. The cache is in memory only (a few entries, lost on restart): a file
written next to the evidence would outlive a retention purge of the run.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from prodcontrol.adapters.evidently_snapshot import deterministic_gzip, render_html
from prodcontrol.evidence.integrity import VerifiedFile

CACHED_PAGES = 8  # about 1.2 MB each, compressed


class PageCache:
    """The last few rendered pages, gzip-compressed, by snapshot SHA-256 (thread-safe)."""

    def __init__(self, size: int = CACHED_PAGES) -> None:
        self._size = size
        self._pages: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, verified: VerifiedFile) -> bytes:
        """The gzip-compressed HTML of ``verified``; raises ValueError if it is no snapshot."""
        with self._lock:
            if verified.sha256 in self._pages:
                self._pages.move_to_end(verified.sha256)
                return self._pages[verified.sha256]
        packed = deterministic_gzip(render_html(verified).encode("utf-8"))
        with self._lock:
            self._pages[verified.sha256] = packed
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return packed


PAGES = PageCache()
