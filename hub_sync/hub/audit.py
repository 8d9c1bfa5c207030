"""The audit log: who did what, to what, when and why, in the county console.

Append-only: the table has triggers that refuse every UPDATE and DELETE, so no
page (and no later code) can edit or drop an entry; ``append`` is the only write.
Review decisions, withdrawals and account changes are written here in the same
transaction as the change they record.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from hub_sync.hub.database import Database, transaction

__all__ = ["AuditLog", "Entry"]


@dataclass(frozen=True)
class Entry:
    id: int
    at: float
    actor: str
    action: str
    target: str
    reason: str
    details: dict


class AuditLog:
    """The hub's audit log (append and read only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, actor: str, action: str, target: str, reason: str = "", details: dict | None = None,
               now: float | None = None) -> int:
        """Add one entry (joins the caller's transaction if there is one); returns its id."""
        with transaction(self.db):
            new_id = self.db.execute("insert into audit_log (at, actor, action, target, reason, details) values (?, ?, ?, ?, ?, ?)"
                                     " returning id", [time.time() if now is None else now, actor, action, target, reason or "",
                                                       json.dumps(details or {}, ensure_ascii=False, sort_keys=True)]).scalar()
        return int(new_id)

    def entries(self, target: str | None = None, limit: int = 200, before_id: int | None = None) -> list[Entry]:
        """Newest first; only ``target``'s if given; ``before_id`` pages back."""
        sql, args = "select id, at, actor, action, target, reason, details from audit_log where true", []
        if target:
            sql, args = sql + " and target = ?", args + [target]
        if before_id:
            sql, args = sql + " and id < ?", args + [before_id]
        rows = self.db.execute(sql + " order by id desc limit ?", args + [limit]).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]
