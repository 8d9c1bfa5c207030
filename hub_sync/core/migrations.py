"""Recorded schema migrations, safe to run twice, applied at start-up.

Each package keeps its own ``Migrations`` set; a step runs once, inside one
transaction together with the row that records it.
"""

from __future__ import annotations

import time
from typing import Callable

import sqlite_utils

Step = Callable[[sqlite_utils.Database], None]


class Migrations:
    """An ordered, named set of schema steps (in the style of sqlite-migrate)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._steps: list[tuple[str, Step]] = []

    def __call__(self, fn: Step) -> Step:
        """Decorator: register ``fn`` as the next step."""
        self._steps.append((fn.__name__, fn))
        return fn

    def names(self) -> list[str]:
        """Names of every step, in order (a firmware release lists them as ``<set>/<step>``)."""
        return [name for name, _ in self._steps]

    def pending(self, db: sqlite_utils.Database) -> list[str]:
        """Names of the steps not yet applied to ``db``."""
        _ensure_table(db)
        done = {r[0] for r in db.execute("select name from _migrations where migration_set = ?", [self.name])}
        return [name for name, _ in self._steps if name not in done]

    def apply(self, db: sqlite_utils.Database) -> list[str]:
        """Apply every pending step; return the names applied."""
        applied = []
        todo = set(self.pending(db))
        for name, step in self._steps:
            if name not in todo:
                continue
            with db.conn:  # one transaction: the step and its record
                db.execute("begin immediate")
                step(db)
                db.execute(
                    "insert into _migrations (migration_set, name, applied_at) values (?, ?, ?)",
                    [self.name, name, time.time()],
                )
            applied.append(name)
        return applied


def _ensure_table(db: sqlite_utils.Database) -> None:
    db.execute(
        "create table if not exists _migrations ("
        " migration_set text not null, name text not null, applied_at real not null,"
        " primary key (migration_set, name))"
    )
