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

import sqlite_utils

from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction

__all__ = ["migrations", "AuditLog", "Entry"]

migrations = Migrations("hub_audit")


@migrations
def m001_audit(db: sqlite_utils.Database) -> None:
    db.execute("""create table audit_log (
        id integer primary key autoincrement,
        at real not null,
        actor text not null,        -- the console account's name (or cli:<user>)
        action text not null,       -- approved, rejected, withdrawn, metadata_edited, account_added ...
        target text not null,       -- offer:<id>, resource:<id>, account:<name>
        reason text not null default '',
        details text not null default '{}'
    )""")
    db.execute("create index audit_target on audit_log(target)")
    for event in ("update", "delete"):
        db.execute(f"create trigger audit_log_no_{event} before {event} on audit_log begin"
                   f" select raise(abort, 'audit_log is append-only'); end")


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

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def append(self, actor: str, action: str, target: str, reason: str = "", details: dict | None = None,
               now: float | None = None) -> int:
        """Add one entry (joins the caller's transaction if there is one); returns its id."""
        with transaction(self.db):
            cur = self.db.execute("insert into audit_log (at, actor, action, target, reason, details) values (?, ?, ?, ?, ?, ?)",
                                  [time.time() if now is None else now, actor, action, target, reason or "",
                                   json.dumps(details or {}, ensure_ascii=False, sort_keys=True)])
        return int(cur.lastrowid)

    def entries(self, target: str | None = None, limit: int = 200, before_id: int | None = None) -> list[Entry]:
        """Newest first; only ``target``'s if given; ``before_id`` pages back."""
        sql, args = "select id, at, actor, action, target, reason, details from audit_log where 1", []
        if target:
            sql, args = sql + " and target = ?", args + [target]
        if before_id:
            sql, args = sql + " and id < ?", args + [before_id]
        rows = self.db.execute(sql + " order by id desc limit ?", args + [limit]).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]
