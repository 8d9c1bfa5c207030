"""The county hub as a library object: data folder, database, keys, content store.

Layout of a hub data folder ``H``::

    H/hub.db            SQLite (WAL): devices, channels, usage ... (the embedded default)
    H/database.url      instead, the URL of the hub's PostgreSQL database (0600; ``hub init --db``)
    H/keys/root.pem     the offline-style root key (in production kept off-line)
    H/keys/online.pem   the online key: signs metadata and acknowledgements
    H/content/          content-addressed store of resource files
    H/repo/             the TUF repository (metadata/ and targets/) served to edges

All SQL lives in the storage modules (``registry.py`` and friends), never in
request handlers; they run it through ``database.Database`` on either engine.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from securesystemslib.signer import CryptoSigner

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.const import MIB
from hub_sync.core.errors import DataDirError
from hub_sync.core.file_modes import tighten_tree
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.hub import rollup, schema_migrations
from hub_sync.hub.channels import Channels
from hub_sync.hub.database import SQLITE_FILE, Database, remember_url, url_of
from hub_sync.hub.publisher import repo_for
from hub_sync.hub.registry import Registry

HUB_DB = SQLITE_FILE


class Hub:
    """One county hub's data folder, opened."""

    def __init__(self, data_dir: str | Path, reserve_mb: int = 256) -> None:
        self.data_dir = Path(data_dir)
        self.db = Database(url_of(self.data_dir), sqlite_functions=rollup.SQLITE_FUNCTIONS)
        self.store = BlobStore(self.data_dir / "content", reserve_bytes=reserve_mb * MIB)

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    def init(cls, data_dir: str | Path, reserve_mb: int = 256, db_url: str | None = None) -> "Hub":
        """Create a new hub: keys, database, store. Refuses to overwrite keys.

        ``db_url`` names a PostgreSQL database (``postgresql://user@host:port/name``) to keep
        the hub's tables in; without it they live in ``H/hub.db`` (SQLite)."""
        data_dir = Path(data_dir)
        keys = data_dir / "keys"
        if (keys / "root.pem").exists():
            raise DataDirError(f"{data_dir} 已经是一个县级平台的数据目录", f"{data_dir} already holds a hub; use it or choose another folder")
        try:
            keys.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataDirError(f"无法创建目录 {data_dir}：{exc.strerror}", f"cannot create {data_dir}: {exc.strerror}") from exc
        os.chmod(keys, 0o700)
        if db_url:
            remember_url(data_dir, db_url)
        generate_key(keys / "root.pem")
        generate_key(keys / "online.pem")
        return cls.open(data_dir, reserve_mb)

    @classmethod
    def open(cls, data_dir: str | Path, reserve_mb: int = 256) -> "Hub":
        """Open an existing hub and bring its schema up to date (Alembic's ``upgrade head``;
        a hub.db made before the hub used Alembic is taken in first)."""
        data_dir = Path(data_dir)
        if not (data_dir / "keys" / "root.pem").is_file():
            raise DataDirError(f"{data_dir} 不是县级平台数据目录。请先运行 school-edge hub init --data {data_dir}",
                               f"{data_dir} is not a hub data folder; run 'school-edge hub init --data {data_dir}' first")
        hub = cls(data_dir, reserve_mb)
        tighten_tree([data_dir / "keys"])  # keys 0600 in 0700 (open_db does the same for the data folder and hub.db)
        with hub.db.transaction():
            hub.db.lock("schema-migrations")  # two processes starting at once: one migrates, the other waits
            schema_migrations.adopt_legacy(hub.db.connection())
        return hub

    def close(self) -> None:
        """Close the database's pooled connections (before a fork, at exit); reopened on use."""
        self.db.close()

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
