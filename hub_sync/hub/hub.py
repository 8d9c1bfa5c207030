"""The county hub as a library object: data folder, database, keys, content store.

Layout of a hub data folder ``H``::

    H/hub.db            SQLite (WAL): devices, channels, usage ...
    H/keys/root.pem     the offline-style root key (in production kept off-line)
    H/keys/online.pem   the online key: signs metadata and acknowledgements
    H/content/          content-addressed store of resource files
    H/repo/             the TUF repository (metadata/ and targets/) served to edges

All SQL lives in the storage modules (``registry.py`` and friends), never in
request handlers, so moving the hub to PostgreSQL is a change of one layer.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import sqlite_utils
from securesystemslib.signer import CryptoSigner

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.const import MIB
from hub_sync.core.errors import DataDirError
from hub_sync.core.file_modes import tighten_tree
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import open_db
from hub_sync.hub import channels, downlink, firmware_repo, fleet, ingest, registry, rollup, usb_offers
from hub_sync.hub import live_interaction, live_timetable
from hub_sync.hub import hub_settings, lrs_relay
from hub_sync.hub import accounts, audit, offers, sessions
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import repo_for
from hub_sync.hub.registry import Registry

HUB_DB = "hub.db"

# The migration sets of the hub's storage modules, applied in this order when a hub is opened.
HUB_MIGRATIONS: tuple[Migrations, ...] = (registry.migrations, channels.migrations, ingest.migrations,
                                          downlink.migrations, usb_offers.migrations,
                                          live_timetable.migrations, live_interaction.migrations, rollup.migrations,
                                          firmware_repo.migrations, fleet.migrations,
                                          hub_settings.migrations, lrs_relay.migrations,
                                          sessions.migrations, accounts.migrations, audit.migrations, offers.migrations)


class Hub:
    """One county hub's data folder, opened."""

    def __init__(self, data_dir: str | Path, reserve_mb: int = 256) -> None:
        self.data_dir = Path(data_dir)
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()
        self.store = BlobStore(self.data_dir / "content", reserve_bytes=reserve_mb * MIB)

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def init(cls, data_dir: str | Path, reserve_mb: int = 256) -> "Hub":
        """Create a new hub: keys, database, store. Refuses to overwrite keys."""
        data_dir = Path(data_dir)
        keys = data_dir / "keys"
        if (keys / "root.pem").exists():
            raise DataDirError(f"{data_dir} 已经是一个县级平台的数据目录", f"{data_dir} already holds a hub; use it or choose another folder")
        try:
            keys.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"无法创建目录 {data_dir}：{exc.strerror}", f"cannot create {data_dir}: {exc.strerror}") from exc
        os.chmod(keys, 0o700)
        generate_key(keys / "root.pem")
        generate_key(keys / "online.pem")
        return cls.open(data_dir, reserve_mb)

    @classmethod
    def open(cls, data_dir: str | Path, reserve_mb: int = 256) -> "Hub":
        """Open an existing hub and bring its schema up to date."""
        data_dir = Path(data_dir)
        if not (data_dir / "keys" / "root.pem").is_file():
            raise DataDirError(f"{data_dir} 不是县级平台数据目录。请先运行 school-edge hub init --data {data_dir}",
                               f"{data_dir} is not a hub data folder; run 'school-edge hub init --data {data_dir}' first")
        hub = cls(data_dir, reserve_mb)
        tighten_tree([data_dir / "keys"])  # keys 0600 in 0700 (open_db does the same for the data folder and hub.db)
        for m in HUB_MIGRATIONS:
            m.apply(hub.db)
        return hub

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection to the hub database."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self.data_dir / HUB_DB)
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    # -- keys -------------------------------------------------------------------
    @property
    def root_signer(self) -> CryptoSigner:
        """The root key (in a real county kept on an offline machine)."""
        return load_signer(self.data_dir / "keys" / "root.pem")

    @property
    def online_signer(self) -> CryptoSigner:
        """The online key: signs metadata and acknowledgements."""
        return load_signer(self.data_dir / "keys" / "online.pem")

    @property
    def repo_dir(self) -> Path:
        return self.data_dir / "repo"

    def status(self) -> dict:
        """Counts a county technician wants to see."""
        usage = shutil.disk_usage(self.data_dir)
        chans = Channels(self.db)
        published = repo_for(self).state()
        return {"data_dir": str(self.data_dir), "devices": Registry(self.db).count(),
                "channels": ", ".join(f"{c.id}{'*' if c.mandatory else ''} v{published.channel_versions.get(c.id, 0)}"
                                      for c in chans.all()) or "-",
                "resources": chans.resource_count(), "snapshot_version": published.snapshot_version,
                "metadata_expires": published.timestamp_expires.isoformat(),
                "disk_free_bytes": usage.free}
