"""A small in-memory cache of catalogue answers, valid for one catalogue generation.

The catalogue changes only when content is synced or a teacher adds a resource,
while a class of tablets asks the same searches again and again. Answers are
kept as finished JSON bytes keyed by (catalogue generation, query string); the
generation (``Catalogue.generation()``, moved by triggers on every change, from
any process) makes a stale answer unreachable, and the least recently used
entries are dropped beyond ``RESPONSE_CACHE_ENTRIES``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable

from edge_agent.const import RESPONSE_CACHE_ENTRIES


class ResponseCache:
    """Thread-safe LRU of ``key -> answer`` (finished JSON bytes, or any value a caller keeps)."""

    def __init__(self, entries: int = RESPONSE_CACHE_ENTRIES) -> None:
        self.entries = entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The cached answer for ``key``, or None."""
        with self._lock:
            body = self._data.get(key)
            if body is not None:
                self._data.move_to_end(key)
            return body

    def put(self, key: Hashable, body: Any) -> None:
        """Remember ``body``; forget the least recently used beyond the limit."""
        with self._lock:
            self._data[key] = body
            self._data.move_to_end(key)
            while len(self._data) > self.entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
