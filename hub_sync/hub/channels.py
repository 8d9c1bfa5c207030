"""The hub's channels, their resources and the schools' choices (all SQL here).

A channel (频道, e.g. "一年级语文 统编版") is mandatory (every school gets it) or
optional (a school subscribes, 自主选用). Resources belong to one channel and
carry their curriculum metadata and file list; publishing turns this into TUF
metadata (``hub_sync.hub.publisher``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from hub_sync.core.errors import FormatError
from hub_sync.formats.tuf_repo import check_channel_id
from hub_sync.hub.database import Database, transaction

RESOURCE_FIELDS = ("title", "kind", "stage", "grade", "subject", "edition", "chapter", "description", "keywords",
                   "source", "licence", "duration_s", "pages")


@dataclass(frozen=True)
class Channel:
    id: str
    title: str
    mandatory: bool


class Channels:
    """Channels, resources and subscriptions in the hub database."""

    def __init__(self, db: Database) -> None:
        self.db = db  # its tables exist: Hub.open applies every hub migration set

    # -- channels ----------------------------------------------------------------
    def put_channel(self, channel_id: str, title: str = "", mandatory: bool | None = None) -> Channel:
        """Create a channel or change its title / mandatory flag (not a channel mirrored from the province)."""
        check_channel_id(channel_id)
        self.refuse_mirrored(channel_id)
        with transaction(self.db):
            row = self.db.execute("select title, mandatory from channels where id = ?", [channel_id]).fetchone()
            if row is None:
                self.db.execute("insert into channels (id, title, mandatory, created_at) values (?, ?, ?, ?)",
                                [channel_id, title or channel_id, int(bool(mandatory)), time.time()])
            else:
                self.db.execute("update channels set title = ?, mandatory = ? where id = ?",
                                [title or row[0], int(row[1] if mandatory is None else mandatory), channel_id])
        return self.get(channel_id)

    def refuse_mirrored(self, channel_id: str) -> None:
        """Raise when ``channel_id`` is mirrored from the province (``channel_mirrors``): its id and
        resources are the province's, signed by the province; this hub may not add to them."""
        if self.db.execute("select 1 from channels where id = ? and mirror = 1", [channel_id]).first() is not None:
            raise FormatError(f"频道 {channel_id} 是镜像的省级频道，本平台不能创建同名频道或往里加资源",
                              f"channel {channel_id} is mirrored from the province: this hub cannot create a channel "
                              "with its id nor add resources to it")

    def get(self, channel_id: str) -> Channel:
        row = self.db.execute("select id, title, mandatory from channels where id = ?", [channel_id]).fetchone()
        if row is None:
            raise FormatError(f"没有频道 {channel_id}，请先用 school-edge hub channel 创建",
                              f"no channel {channel_id}; create it with 'school-edge hub channel' first")
        return Channel(row[0], row[1], bool(row[2]))

    def all(self) -> list[Channel]:
        return [Channel(r[0], r[1], bool(r[2])) for r in self.db.execute("select id, title, mandatory from channels order by id")]

    # -- resources ---------------------------------------------------------------
    def put_resource(self, resource_id: str, channel: str, meta: dict, files: list[dict]) -> None:
        """Add or replace a resource (``files``: path, sha256, size, mime) of one of this hub's own channels."""
        self.get(channel)
        self.refuse_mirrored(channel)
        if not resource_id or "/" in resource_id or resource_id.startswith(".") or len(resource_id) > 100:
            raise FormatError(f"资源编号 {resource_id!r} 无效", f"invalid resource id {resource_id!r}")
        clean = {k: meta[k] for k in RESOURCE_FIELDS if meta.get(k) not in (None, "")}
        with transaction(self.db):
            self.db.execute("insert into hub_resources (id, channel, meta, files, updated_at) values (?, ?, ?, ?, ?)"
                            " on conflict (id) do update set channel = excluded.channel, meta = excluded.meta,"
                            " files = excluded.files, updated_at = excluded.updated_at",
                            [resource_id, channel, json.dumps(clean, ensure_ascii=False), json.dumps(files), time.time()])

    def remove_resource(self, resource_id: str) -> str:
        """Drop a resource; return the channel it was in (to republish)."""
        row = self.db.execute("select channel from hub_resources where id = ?", [resource_id]).fetchone()
        if row is None:
            raise FormatError(f"没有资源 {resource_id}", f"no resource {resource_id}")
        with transaction(self.db):
            self.db.execute("delete from hub_resources where id = ?", [resource_id])
        return row[0]

    def resources(self, channel: str) -> list[tuple[str, dict, list[dict]]]:
        """(resource id, metadata, files) of a channel, by id."""
        return [(r[0], json.loads(r[1]), json.loads(r[2])) for r in self.db.execute(
            "select id, meta, files from hub_resources where channel = ? order by id", [channel])]

    def resource_count(self) -> int:
        return self.db.execute("select count(*) from hub_resources").fetchone()[0]

    # -- schools -----------------------------------------------------------------
    def subscribe(self, school_code: str, channel: str, on: bool) -> None:
        self.get(channel)
        with transaction(self.db):
            if on:
                self.db.execute("insert into subscriptions (school_code, channel, at) values (?, ?, ?)"
                                " on conflict (school_code, channel) do update set at = excluded.at",
                                [school_code, channel, time.time()])
            else:
                self.db.execute("delete from subscriptions where school_code = ? and channel = ?", [school_code, channel])

    def channels_for(self, school_code: str) -> list[Channel]:
        """What a school gets: the mandatory channels plus the ones it chose."""
        return [Channel(r[0], r[1], bool(r[2])) for r in self.db.execute(
            "select id, title, mandatory from channels where mandatory = 1 or id in "
            "(select channel from subscriptions where school_code = ?) order by id", [school_code])]

    def schools(self) -> list[str]:
        """Every school the hub publishes an index for (enrolled, provisioned or subscribed)."""
        rows = self.db.execute(
            "select school_code from devices union select school_code from subscriptions "
            "union select school_code from provisionings order by 1")
        return [r[0] for r in rows]

    # -- provisioned schools ---------------------------------------------------------
    def add_provisioning(self, token_hash: str, school_code: str, school_name: str) -> None:
        """A bundle was made for ``school_code``: publish an index for it from now on
        (the token's use and expiry are the registry's: ``Registry.add_token``)."""
        with transaction(self.db):
            self.db.execute("insert into provisionings (token, school_code, school_name, created_at) values (?, ?, ?, ?)"
                            " on conflict (token) do update set school_code = excluded.school_code,"
                            " school_name = excluded.school_name, created_at = excluded.created_at",
                            [token_hash, school_code, school_name, time.time()])
