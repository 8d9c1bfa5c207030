"""Channels this hub mirrors from another hub (a county's copies of province channels; all SQL here).

A mirrored channel has a row in ``channel_mirrors`` (where it comes from, how the last
sync went) and one in ``channels`` with ``mirror = 1``, so schools get it like any
channel (mandatory, or subscribed) while its content and signatures stay the
province's (``hub_sync.hub.mirror_sync``). Its id is reserved: the county cannot
create a channel of its own with it, nor put resources in it.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import Key

from hub_sync.core.errors import FormatError
from hub_sync.formats.tuf_repo import MirroredRole, check_channel_id
from hub_sync.hub.channels import Channels
from hub_sync.hub.database import Database

MIRRORS_DIR = "mirrors"
VERIFIED_FILE = "verified.json"



@dataclass(frozen=True)
class Mirror:
    channel: str
    url: str
    added_at: float
    synced_at: float | None
    version: int | None
    error: str


class ChannelMirrors:
    """The ``channel_mirrors`` table and the ``mirror`` marker of ``channels``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, channel: str, url: str, title: str = "", mandatory: bool = False) -> Mirror:
        """Start mirroring ``channel`` from the hub at ``url``; refused when the county
        already has a channel of its own with that id."""
        check_channel_id(channel)
        with self.db.transaction():
            row = self.db.execute("select mirror from channels where id = :id", {"id": channel}).first()
            if row is not None and not row[0]:
                raise FormatError(f"本平台已有频道 {channel}，不能再镜像同名的省级频道",
                                  f"this hub already has its own channel {channel}; a mirrored channel cannot take its id")
            self.db.execute("insert into channels (id, title, mandatory, created_at, mirror) values (:id, :title, :m, :at, 1)"
                            " on conflict (id) do update set title = excluded.title, mandatory = excluded.mandatory",
                            {"id": channel, "title": title or channel, "m": int(bool(mandatory)), "at": time.time()})
            self.db.execute("insert into channel_mirrors (channel, url, added_at) values (:ch, :url, :at)"
                            " on conflict (channel) do update set url = excluded.url",
                            {"ch": channel, "url": url.rstrip("/"), "at": time.time()})
        return self.get(channel)

    def get(self, channel: str) -> Mirror:
        row = self.db.execute("select channel, url, added_at, synced_at, version, error from channel_mirrors"
                              " where channel = :ch", {"ch": channel}).first()
        if row is None:
            raise FormatError(f"没有镜像频道 {channel}", f"no mirrored channel {channel}")
        return Mirror(*row)

    def all(self) -> list[Mirror]:
        return [Mirror(*r) for r in self.db.execute(
            "select channel, url, added_at, synced_at, version, error from channel_mirrors order by channel")]

    def ids(self) -> set[str]:
        """The mirrored channels' ids (reserved: no channel of the county's own may take one)."""
        return {r[0] for r in self.db.execute("select id from channels where mirror = 1")}

    def is_mirrored(self, channel: str) -> bool:
        return self.db.execute("select 1 from channels where id = :id and mirror = 1", {"id": channel}).first() is not None

    def refuse_own(self, channel: str) -> None:
        """Raise when ``channel`` is mirrored: the county cannot create it nor add resources to it."""
        Channels(self.db).refuse_mirrored(channel)

    def synced(self, channel: str, version: int) -> None:
        """A sync verified and stored everything of ``channel`` at role ``version``."""
        self.db.execute("update channel_mirrors set synced_at = :at, version = :v, error = '' where channel = :ch",
                        {"at": time.time(), "v": int(version), "ch": channel})

    def failed(self, channel: str, reason: str) -> None:
        self.db.execute("update channel_mirrors set error = :e where channel = :ch", {"e": reason, "ch": channel})

    def remove(self, channel: str) -> None:
        """Stop mirroring: the channel, the schools' subscriptions to it and the mirror row go."""
        self.get(channel)
        with self.db.transaction():
            self.db.execute("delete from subscriptions where channel = :ch", {"ch": channel})
            self.db.execute("delete from channels where id = :ch and mirror = 1", {"ch": channel})
            self.db.execute("delete from channel_mirrors where channel = :ch", {"ch": channel})


def mirror_dir(hub, channel: str) -> Path:
    check_channel_id(channel)
    return hub.data_dir / MIRRORS_DIR / channel


def mirrored_roles(hub, channels: set[str]) -> dict[str, MirroredRole]:
    """The last verified copy of each of ``channels`` that has one (for ``publisher.publish``)."""
    out = {}
    for channel in sorted(channels):
        path = mirror_dir(hub, channel) / VERIFIED_FILE
        if not path.is_file():
            continue  # never synced: not published, nor listed in any school's index
        saved = json.loads(path.read_bytes())
        out[channel] = MirroredRole(
            name=channel, origin=saved["origin"], keyids=saved["keyids"], threshold=saved["threshold"],
            paths=[f"{channel}/*/*"],  # the county's own word on what the province may sign under this role
            keys={k: Key.from_dict(k, dict(v)) for k, v in saved["keys"].items()},
            files={name: (f["version"], base64.b64decode(f["data"])) for name, f in saved["files"].items()})
    return out
