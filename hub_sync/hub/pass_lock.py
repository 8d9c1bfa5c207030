"""One pass at a time of a hub's relay (to the LRS, to the province): the CLI's push, the
server's scheduled job and, on PostgreSQL, every ``hub serve`` process on any box.

A SQLite hub is one box: an exclusive lock file in its data folder. A hub on PostgreSQL
holds a session advisory lock on a connection of its own for the whole pass (a pass
makes many transactions, so a transaction-scoped lock would not cover it)."""

from __future__ import annotations

import fcntl

import sqlalchemy as sa

from hub_sync.core.errors import Problem
from hub_sync.hub.database import advisory_key


class PassLock:
    """``with PassLock(hub, "lrs-relay", busy):`` the pass, or ``busy`` raised at once."""

    def __init__(self, hub, name: str, busy: Problem) -> None:
        self.hub, self.name, self.busy = hub, name, busy
        self._file = None
        self._conn = None

    def __enter__(self) -> "PassLock":
        if self.hub.db.dialect == "postgresql":
            self._conn = self.hub.db.engine.connect()
            got = self._conn.execute(sa.text("select pg_try_advisory_lock(:k)"), {"k": advisory_key(self.name)}).scalar()
            self._conn.commit()
            if not got:
                self._conn.close()
                raise self.busy
            return self
        self._file = open(self.hub.data_dir / f"{self.name}.lock", "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise self.busy from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("select pg_advisory_unlock(:k)"), {"k": advisory_key(self.name)})
                self._conn.commit()
            finally:
                self._conn.close()  # a lost connection ends its session, and the lock with it
        if self._file is not None:
            self._file.close()
