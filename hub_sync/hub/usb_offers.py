"""Teacher resources offered to the county that came on a stick (``hub import-usb``).

Each offer is the metadata a device listed in its signed export (the files are
already in the hub's store, hash-checked); the review queue reads them. One row per
device and resource: the same offer carried twice is stored once, the newest wins.
All SQL of stick offers is here; ``Hub.open`` applies the table's migrations.
"""

from __future__ import annotations

import json
import time

from hub_sync.hub.database import Database, transaction

# The set keeps the name it had in provisioning.sneakernet_hub: hubs that recorded it keep it.


def record_offer(db: Database, device_id: str, school_code: str, upload: dict) -> None:
    """Keep (or replace) ``device_id``'s offer of ``upload["resource_id"]`` for review."""
    with transaction(db):
        db.execute("insert into usb_offered_uploads (device_id, resource_id, school_code, meta, received_at)"
                   " values (?, ?, ?, ?, ?) on conflict (device_id, resource_id) do update set"
                   " school_code = excluded.school_code, meta = excluded.meta, received_at = excluded.received_at",
                   [device_id, str(upload.get("resource_id")), school_code, json.dumps(upload, ensure_ascii=False), time.time()])
