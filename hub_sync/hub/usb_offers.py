"""Teacher resources offered to the county that came on a stick (``hub import-usb``).

Each offer is the metadata a device listed in its signed export (the files are
already in the hub's store, hash-checked); the review queue reads them. One row per
device and resource: the same offer carried twice is stored once, the newest wins.
All SQL of stick offers is here; ``Hub.open`` applies the table's migrations.
"""

from __future__ import annotations

import json
import time

import sqlite_utils

from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction

# The set keeps the name it had in provisioning.sneakernet_hub: hubs that recorded it keep it.
migrations = Migrations("hub_usb")


@migrations
def m001_offered_uploads(db: sqlite_utils.Database) -> None:
    db["usb_offered_uploads"].create({"device_id": str, "resource_id": str, "school_code": str, "meta": str,
                                      "received_at": float}, pk=("device_id", "resource_id"))


def record_offer(db: sqlite_utils.Database, device_id: str, school_code: str, upload: dict) -> None:
    """Keep (or replace) ``device_id``'s offer of ``upload["resource_id"]`` for review."""
    with transaction(db):
        db["usb_offered_uploads"].upsert({"device_id": device_id, "resource_id": str(upload.get("resource_id")),
                                          "school_code": school_code, "meta": json.dumps(upload, ensure_ascii=False),
                                          "received_at": time.time()}, pk=("device_id", "resource_id"))
