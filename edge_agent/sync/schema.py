"""Tables of content sync on the appliance and the status lines they give.

* ``sync_state``: key/value (catalogue_version, last_success_at, last_error ...)
* ``sync_channels``: the channels (and versions) the current catalogue came from
* ``sync_resources``: ids of resources the hub manages (dropped when unlisted), with a
  digest of what was catalogued, so a sync rewrites only the resources that changed
* ``sync_blobs``: blobs brought by sync (garbage-collected when unreferenced)

and, in their own sets, the usage chain (``usage_migrations``) and the batches put on a
stick (``usb_migrations``). ``edge_agent.appliance`` applies every set when it opens.
"""

from __future__ import annotations

import sqlite_utils

from hub_sync.core.migrations import Migrations

migrations = Migrations("content_sync")


@migrations
def m001_sync_tables(db: sqlite_utils.Database) -> None:
    db["sync_state"].create({"key": str, "value": str}, pk="key")
    db["sync_channels"].create({"channel": str, "title": str, "mandatory": int, "version": int}, pk="channel")
    db["sync_resources"].create({"resource_id": str, "channel": str}, pk="resource_id")
    db["sync_blobs"].create({"sha256": str}, pk="sha256")


@migrations
def m002_resource_digest(db: sqlite_utils.Database) -> None:
    # empty for rows from before: those resources are rewritten once by the next sync
    db["sync_resources"].add_column("digest", str)


def sync_value(db: sqlite_utils.Database, key: str, default: str = "") -> str:
    row = db.execute("select value from sync_state where key = ?", [key]).fetchone()
    return row[0] if row else default


def sync_status(db: sqlite_utils.Database) -> dict:
    """The sync lines of ``edge status``."""
    return {
        "catalogue_version": int(sync_value(db, "catalogue_version", "0")),
        "last_sync_success": sync_value(db, "last_success_at", "-"),
        "last_sync_error": sync_value(db, "last_error", "-") or "-",
        "hub_url": (db.execute("select value from device_identity where key = 'hub_url'").fetchone() or ["-"])[0],
    }


# Usage upload state (edge_agent.sync.usage_sync); its own set, so devices that recorded it keep it.
usage_migrations = Migrations("usage_sync")


@usage_migrations
def m001_usage_chain(db: sqlite_utils.Database) -> None:
    # chain_seq/chain_hash: the batch the hub last acknowledged (the next batch chains to it);
    # last_sent_hash: the last batch put on the wire (for the technician's status)
    db.execute("create table usage_chain (key text primary key, value text not null)")


# Usage carried by stick (provisioning.sneakernet writes and reads these); the set keeps the
# name it had there, so devices that recorded it keep it.
usb_migrations = Migrations("usb_sneakernet")


@usb_migrations
def m001_usb_exports(db: sqlite_utils.Database) -> None:
    # batches this device put on a stick: an acknowledgement must name one of them
    db["usb_exports"].create({"batch_hash": str, "first_seq": int, "last_seq": int, "prev_hash": str,
                              "export_no": int, "exported_at": float}, pk="batch_hash")
    db["usb_state"].create({"key": str, "value": str}, pk="key")


def synced_channels(db: sqlite_utils.Database) -> list[dict]:
    """The channels (and versions) the current catalogue came from, for the technician."""
    rows = db.execute("select channel, title, mandatory, version from sync_channels order by channel").fetchall()
    return [{"channel": c, "title": t, "mandatory": bool(m), "version": v} for c, t, m, v in rows]
