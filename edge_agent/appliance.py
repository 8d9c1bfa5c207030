"""The appliance as a library object: config, database, content store, catalogue.

``Appliance.open(config)`` prepares the data folder (migrations, identity) and is
what the CLI, the web app and the scheduled jobs share. Database connections are
per thread, because a sqlite3 connection must not be used by two threads at once;
a server hands a request's connection back with ``release()`` so a few pooled
connections serve all its request threads (each costs its own page cache).
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path

import sqlite_utils

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.errors import DataDirError
from hub_sync.core.migrations import Migrations
from hub_sync.core.file_modes import tighten_tree
from hub_sync.core.sqlite_db import open_db, transaction
from hub_sync.core.trusted_clock import TrustedClock

from firmware import __version__
from edge_agent.library.catalogue import Catalogue
from edge_agent.config import EdgeConfig
from edge_agent.const import MIB, TRUSTED_CLOCK_FILE
from edge_agent.sync.downlink import migrations as downlink_migrations
from edge_agent.sync.downlink import status as downlink_status
from edge_agent.library.integrity import IntegrityGuard
from edge_agent.journal import Journal
from edge_agent.journal import migrations as journal_migrations
from edge_agent.library.schema import migrations as library_migrations
from edge_agent.sync.schema import migrations as sync_migrations
from edge_agent.sync.schema import usage_migrations, usb_migrations
from edge_agent.sync.live_outbox import migrations as live_outbox_migrations
from edge_agent.sync.live_outbox import status as live_outbox_status
from edge_agent.sync.live_timetable import migrations as live_timetable_migrations
from edge_agent.sync.schema import sync_status
from edge_agent.spaces.idempotency import migrations as idempotency_migrations
from edge_agent.spaces.schema import migrations as spaces_migrations

DB_FILE = "edge.db"
# Folders of secrets and personal state: 0700 with files 0600, tightened at every open
# (keys: the device key; trust: the pinned hub keys; sync: TUF metadata, the trusted clock, downloads)
PRIVATE_FOLDERS = ("keys", "trust", "sync")
# A server's request threads share a few connections: at most POOL_CONNECTIONS
# requests use the database at once (two cores gain nothing from more, and each
# connection costs its own page cache and schema); POOL_IDLE_CONNECTIONS stay open
# for the next requests, the others are closed when handed back. A request waits
# at most POOL_WAIT_S for one, then opens its own: slow requests holding theirs
# (an upload from a tablet on weak Wi-Fi) must not stall the whole school.
POOL_CONNECTIONS = 8
POOL_IDLE_CONNECTIONS = 2
POOL_WAIT_S = 0.5
# Where versions before the trusted clock kept the proven time (read once at open, then removed)
LEGACY_TRUSTED_TIME = "trusted_time"

# Every migration set of the appliance database, applied in this order by ``Appliance.open``
# and nowhere else (the sets of the layers below; provisioning's tables live in sync.schema).
MIGRATIONS: tuple[Migrations, ...] = (
    library_migrations,      # catalogue, device identity
    journal_migrations,      # usage journal
    sync_migrations,         # content sync state
    usage_migrations,        # usage upload chain
    spaces_migrations,       # learning spaces
    downlink_migrations,     # county messages applied
    idempotency_migrations,  # Idempotency-Key answers of the JSON API
    usb_migrations,          # usage batches exported to sticks
    live_timetable_migrations,  # the live lessons' timetable from the county
    live_outbox_migrations,  # pupils' hands, questions, poll answers going up
)


class Appliance:
    """One school appliance's data folder, opened."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.data_dir = Path(config.data_dir)
        self._local = threading.local()
        self._all_dbs: list[sqlite_utils.Database] = []
        self._idle: list[sqlite_utils.Database] = []  # released, ready for the next request
        self._slots = threading.Semaphore(POOL_CONNECTIONS)
        self._lock = threading.Lock()
        self.store = BlobStore(self.data_dir / "content", reserve_bytes=config.free_space_reserve_mb * MIB)
        self.integrity = IntegrityGuard(self)
        self.clock = TrustedClock(self.data_dir / TRUSTED_CLOCK_FILE)  # the one home of trusted time

    @classmethod
    def open(cls, config: EdgeConfig) -> "Appliance":
        """Open (creating if needed) the data folder and bring its schema up to date."""
        data_dir = Path(config.data_dir)
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(
                f"无法创建数据目录 {data_dir}：{exc.strerror}。请换一个目录或检查权限",
                f"cannot create data folder {data_dir}: {exc.strerror}; choose another folder or check permissions",
            ) from exc
        if not os.access(data_dir, os.W_OK):
            raise DataDirError(
                f"数据目录 {data_dir} 不可写。请检查权限或用 --data 指定另一个目录",
                f"data folder {data_dir} is not writable; check permissions or pass another --data",
            )
        app = cls(config)
        for m in MIGRATIONS:
            m.apply(app.db)
        # the first open_db made the data folder 0700 and the database 0600; now the folders of secrets
        tighten_tree(data_dir / name for name in PRIVATE_FOLDERS)
        app._ensure_identity()
        app._adopt_identity_trusted_time()
        app.store.clean_incoming()
        return app

    # -- database --------------------------------------------------------------
    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection to the appliance database."""
        db = getattr(self._local, "db", None)
        if db is None:
            if getattr(self._local, "pooled", False) and not getattr(self._local, "slot", False):
                # wait briefly for a free connection; without one, go on with a connection of its own
                self._local.slot = self._slots.acquire(timeout=POOL_WAIT_S)
            with self._lock:
                db = self._idle.pop() if self._idle else None
            if db is None:
                db = open_db(self.data_dir / DB_FILE)
                with self._lock:
                    self._all_dbs.append(db)
            self._local.db = db
        return db

    def use_pool(self) -> None:
        """Mark this thread as a server's request thread: its ``db`` waits for one of
        ``POOL_CONNECTIONS`` and must be handed back with ``release()``."""
        self._local.pooled = True

    def release(self) -> None:
        """Hand this thread's connection back to the pool (a server calls it after
        each request); the thread's next ``db`` takes one from the pool again."""
        db = getattr(self._local, "db", None)
        if getattr(self._local, "slot", False):
            self._local.slot = False
            self._slots.release()
        if db is None:
            return
        self._local.db = None
        if db.conn.in_transaction:  # a transaction never outlives its request
            db.conn.execute("rollback")
        with self._lock:
            if db not in self._all_dbs:  # close() ran meanwhile
                return
            if len(self._idle) < POOL_IDLE_CONNECTIONS:
                self._idle.append(db)
                return
            self._all_dbs.remove(db)
        db.close()

    @property
    def catalogue(self) -> Catalogue:
        return Catalogue(self.db)

    @property
    def journal(self) -> Journal:
        return Journal(self.db)

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._lock:
            for db in self._all_dbs:
                db.close()
            self._all_dbs.clear()
            self._idle.clear()
        self._local = threading.local()

    # -- identity --------------------------------------------------------------
    def _ensure_identity(self) -> None:
        with transaction(self.db):
            if self.identity("device_id") is None:
                self.set_identity(device_id="edge-" + secrets.token_hex(6))
            if self.identity("secret_key") is None:
                self.set_identity(secret_key=secrets.token_hex(32))

    def _adopt_identity_trusted_time(self) -> None:
        """Move the proven time an older version kept as the ``trusted_time`` identity row
        into the trusted clock, once: the clock keeps the later of the two, the row goes."""
        legacy = self.identity(LEGACY_TRUSTED_TIME)
        if legacy is None:
            return
        try:
            self.clock.prove_timestamp(float(legacy))
        except ValueError:
            pass  # an unreadable row proves nothing
        with transaction(self.db):
            self.db.execute("delete from device_identity where key = ?", [LEGACY_TRUSTED_TIME])

    def identity(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("select value from device_identity where key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_identity(self, **values: str) -> None:
        with transaction(self.db):
            for key, value in values.items():
                self.db["device_identity"].upsert({"key": key, "value": str(value)}, pk="key")

    @property
    def device_id(self) -> str:
        return self.identity("device_id") or ""

    @property
    def school_code(self) -> str:
        return self.identity("school_code", "") or ""

    # -- status ----------------------------------------------------------------
    def status(self) -> dict:
        """What a technician and the status API want to know at a glance."""
        usage = shutil.disk_usage(self.data_dir)
        return {
            "school_code": self.school_code,
            "school_name": self.identity("school_name", "") or "",
            "device_id": self.device_id,
            "version": __version__,
            "role": self.config.role,
            "resources": self.catalogue.count(),
            "disk_free_bytes": usage.free,
            "disk_total_bytes": usage.total,
            "free_space_reserve_bytes": self.store.reserve_bytes,
            "corrupt_files": self.integrity.corrupt_count(),
            "pending_usage_events": self.journal.pending_count(),
            **sync_status(self.db),
            **downlink_status(self.db),
            **live_outbox_status(self.db),
        }
