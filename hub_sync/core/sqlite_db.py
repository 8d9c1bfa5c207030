"""Opening the appliance's SQLite database: WAL, full sync, explicit transactions.

Connections are opened in autocommit mode (``isolation_level=None``) so every
write is inside an explicit ``transaction()``; ``synchronous=FULL`` makes a
committed transaction survive power loss, not only a process crash.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

import sqlite_utils

SQLITE_BUSY_TIMEOUT_MS = 10_000
# Page cache per connection. A server may have many connections open at once (the
# appliance pools its request threads' connections, the hub keeps one per thread),
# so SQLite's default of 2 MiB each would cost tens of MiB on a small board; the
# kernel's page cache holds the database file for all of them anyway.
SQLITE_CACHE_KIB = 512


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) a database file in WAL mode with safe pragmas."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"pragma busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = full")
    conn.execute("pragma foreign_keys = on")
    conn.execute(f"pragma cache_size = -{SQLITE_CACHE_KIB}")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database, immediate: bool = True) -> Iterator[sqlite_utils.Database]:
    """An explicit transaction: committed on success, rolled back on any error.

    ``immediate`` takes the write lock at the start, so two writers queue on the
    busy timeout instead of failing half-way with SQLITE_BUSY.
    """
    conn = db.conn
    if conn.in_transaction:  # nested: join the outer transaction
        yield db
        return
    conn.execute("begin immediate" if immediate else "begin")
    try:
        yield db
    except BaseException:
        conn.execute("rollback")
        raise
    else:
        conn.execute("commit")
