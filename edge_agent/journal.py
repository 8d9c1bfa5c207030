"""The usage journal: every meaningful act, appended durably with a sequence number.

``Journal.append`` commits one row in its own transaction (WAL, synchronous=FULL),
so once it returns the event survives ``kill -9`` and power loss. Sequence numbers
are per device, start at 1, and are never reused: order comes from them, never
from the wall clock, which may be wrong on a board without an RTC battery.
Events are pruned only up to a sequence the hub acknowledged in a signed message.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Iterator

import sqlite_utils

from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction
from hub_sync.formats.usage_batch import UsageEvent as Event  # one record for an event, here and on the wire

from edge_agent.errors import BadRequestError

VERBS = (
    "viewed", "progressed", "completed", "answered", "submitted", "graded", "uploaded",
    "messaged", "logged_in", "logged_out", "assigned", "shared", "admin",
)

migrations = Migrations("journal")


@migrations
def m001_journal(db: sqlite_utils.Database) -> None:
    # AUTOINCREMENT: a sequence number is never reused, even after pruning the tail
    db.execute(
        "create table journal (seq integer primary key autoincrement, ts real not null,"
        " actor text not null, verb text not null, object text not null, data text not null default '{}')"
    )
    db.execute("create table journal_state (key text primary key, value integer not null)")


class Journal:
    """Append, read and prune usage events in the appliance database."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def append(self, actor: str, verb: str, obj: str, data: dict[str, Any] | None = None, ts: float | None = None) -> int:
        """Durably record one act; return its sequence number."""
        if verb not in VERBS:
            raise BadRequestError(f"未知的行为 {verb}", f"unknown verb {verb}")
        payload = json.dumps(data or {}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        with transaction(self.db):
            cur = self.db.execute(
                "insert into journal (ts, actor, verb, object, data) values (?, ?, ?, ?, ?)",
                [time.time() if ts is None else ts, actor, verb, obj, payload],
            )
            return cur.lastrowid

    def append_many(self, events: Iterable[tuple[str, str, str, dict | None]]) -> list[int]:
        """Several acts in one transaction (all or none)."""
        with transaction(self.db):
            return [self.append(*e) for e in events]

    def pending(self, after_seq: int = 0, limit: int = 10_000) -> list[Event]:
        """Events with seq > ``after_seq`` in order, at most ``limit``."""
        return list(self._rows("where seq > ? order by seq limit ?", [after_seq, limit]))

    def pending_count(self) -> int:
        return self.db.execute("select count(*) from journal where seq > ?", [self.acknowledged()]).fetchone()[0]

    def last_seq(self) -> int:
        row = self.db.execute("select seq from sqlite_sequence where name = 'journal'").fetchone()
        return row[0] if row else 0

    def acknowledged(self) -> int:
        """The highest contiguous sequence the hub has acknowledged."""
        row = self.db.execute("select value from journal_state where key = 'acked'").fetchone()
        return row[0] if row else 0

    def prune_acknowledged(self, acked_seq: int) -> int:
        """Record the hub's acknowledgement and delete what it covers; return rows deleted.

        Call only with a sequence taken from a verified, signed acknowledgement.
        """
        with transaction(self.db):
            if acked_seq > self.last_seq():
                raise BadRequestError("确认的序号超过了本机已记录的事件", "acknowledged sequence is beyond what this device recorded")
            acked = max(acked_seq, self.acknowledged())
            self.db.execute("insert or replace into journal_state (key, value) values ('acked', ?)", [acked])
            return self.db.execute("delete from journal where seq <= ?", [acked]).rowcount

    def _rows(self, clause: str, params: list) -> Iterator[Event]:
        for seq, ts, actor, verb, obj, data in self.db.execute(
            f"select seq, ts, actor, verb, object, data from journal {clause}", params
        ):
            yield Event(seq, ts, actor, verb, obj, json.loads(data))
