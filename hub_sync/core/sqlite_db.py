"""Opening the appliance's SQLite database: WAL, full sync, explicit transactions.

Connections are opened in autocommit mode (``isolation_level=None``) so every
write is inside an explicit ``transaction()``; ``synchronous=FULL`` makes a
committed transaction survive power loss, not only a process crash.

A database holds personal data: its file is created 0600 (SQLite gives the
``-wal`` and ``-shm`` files the database file's mode) in a folder made 0700, and
an existing one found looser is tightened at open (``hub_sync.core.file_modes``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

import sqlite_utils

from hub_sync.core.const import SQLITE_BUSY_TIMEOUT_MS
from hub_sync.core.file_modes import private_dir, private_file

# Page cache per connection. A server may have many connections open at once (the
# appliance pools its request threads' connections, the hub keeps one per thread),
# so SQLite's default of 2 MiB each would cost tens of MiB on a small board; the
# kernel's page cache holds the database file for all of them anyway.
SQLITE_CACHE_KIB = 512
# the files SQLite keeps beside a database (write-ahead log, its index, a rollback journal)
SIDE_FILES = ("", "-wal", "-shm", "-journal")


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) a database file in WAL mode with safe pragmas;
    the file, its WAL and shared memory 0600 in a 0700 folder."""
    path = Path(path)
    private_dir(path.parent)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    # modes are changed by name only: opening and closing the file ourselves would drop the
    # POSIX locks SQLite's other connections in this process hold on it (SQLite's "how to
    # corrupt" 2.2). Made 0600 before the pragmas below create the WAL and SHM, which take
    # the database file's mode.
    for suffix in SIDE_FILES:
        private_file(f"{path}{suffix}")
    conn.execute(f"pragma busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("pragma journal_mode = wal")
    conn.execute("pragma synchronous = full")
    conn.execute("pragma foreign_keys = on")
    conn.execute(f"pragma cache_size = -{SQLITE_CACHE_KIB}")
    for suffix in SIDE_FILES:  # made by the pragmas above when the database is new
        private_file(f"{path}{suffix}")
    return sqlite_utils.Database(conn)


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database, immediate: bool = True) -> Iterator[sqlite_utils.Database]:
    """An explicit transaction: committed on success, rolled back on any error.

    ``immediate`` takes the write lock at the start, so two writers queue on the
    busy timeout instead of failing half-way with SQLITE_BUSY. The hub's database
    (``hub_sync.hub.database.Database``, SQLite or PostgreSQL) has transactions of its own:
    code shared by the appliance and the hub (the login throttle) calls this for both.
    """
    if not hasattr(db, "conn"):
        with db.transaction(immediate):
            yield db
        return
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
