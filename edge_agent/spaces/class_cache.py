"""A cache of answers computed from one class's data (the teacher's progress summary),
valid while the class's version is unchanged.

``class_versions`` (``schema.m007_class_versions``) gets a new random version, in the
same transaction, with every write to what a class summary is computed from: the
triggers cover every writer (the API, merges, roster imports, another process). A
cached answer is used only when the version read in the same snapshot is the one it
was computed at, so it is always the answer a fresh computation would give; a
teacher reading the summary again while nothing changed costs one indexed read.
"""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.library.response_cache import ResponseCache

T = TypeVar("T")
MAX_CLASSES = 128  # a school has up to ~100 classes; a summary is ~10-20 KB of JSON


def class_version(db: sqlite_utils.Database, class_id: int) -> int | None:
    """The current version of a class's data (None for a class never written since the migration)."""
    row = db.execute("select version from class_versions where class_id = ?", [class_id]).fetchone()
    return row[0] if row else None


class ClassCache(Generic[T]):
    """Computed answers per class (the newest version of each), least recently used
    dropped beyond ``max_classes``. Thread-safe."""

    def __init__(self, max_classes: int = MAX_CLASSES) -> None:
        self._lru = ResponseCache(max_classes)  # class id -> (version, answer)
        self.hits = self.misses = 0

    def get(self, db: sqlite_utils.Database, class_id: int, compute: Callable[[], T]) -> T:
        """The cached answer for the class's current version, or ``compute()`` (then kept)."""
        # one read snapshot for the version and the computation: a write committed
        # meanwhile is either wholly in the answer or changes the version after it
        with transaction(db, immediate=False):
            version = class_version(db, class_id)
            entry = self._lru.get(class_id)
            if entry is not None and version is not None and entry[0] == version:
                self.hits += 1
                return entry[1]
            self.misses += 1
            value = compute()
        if version is not None:
            self._lru.put(class_id, (version, value))
        return value
