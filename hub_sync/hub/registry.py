"""The hub's device registry: which devices exist, their public keys, revocation.

A device enrolls with a request signed by its own key (``provisioning``); the hub
stores the public key and uses it to verify everything the device sends up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import sqlite_utils
from securesystemslib.signer import Key

from hub_sync.core.errors import DeviceError
from hub_sync.core.keys import public_key_from_dict
from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import transaction
from hub_sync.hub.hub import HUB_MIGRATIONS

migrations = Migrations("hub_registry")
HUB_MIGRATIONS.append(migrations)


@migrations
def m001_devices(db: sqlite_utils.Database) -> None:
    db["devices"].create(
        {"device_id": str, "school_code": str, "school_name": str, "public_key": str, "status": str,
         "enrolled_at": float, "revoked_at": float, "last_seen_at": float},
        pk="device_id", not_null={"school_code", "public_key", "status"},
    )
    db["devices"].create_index(["school_code"])


@dataclass(frozen=True)
class Device:
    device_id: str
    school_code: str
    school_name: str
    public_key: Key
    revoked: bool


class Registry:
    """Devices known to the hub."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db

    def register(self, device_id: str, school_code: str, public_key: dict, school_name: str = "") -> Device:
        """Add a device (or confirm the same key again). A different key for a
        known device id is refused: a device identity cannot be taken over."""
        key = public_key_from_dict(public_key)
        with transaction(self.db):
            existing = self._row(device_id)
            if existing is not None:
                if json.loads(existing["public_key"])["keyid"] != key.keyid:
                    raise DeviceError(f"设备 {device_id} 已用另一把密钥登记，拒绝覆盖",
                                      f"device {device_id} is enrolled with another key; refusing to replace it")
                if existing["status"] == "revoked":
                    raise DeviceError(f"设备 {device_id} 已被吊销", f"device {device_id} is revoked")
                return self.get(device_id)
            self.db["devices"].insert({
                "device_id": device_id, "school_code": school_code, "school_name": school_name,
                "public_key": json.dumps(public_key, sort_keys=True), "status": "active",
                "enrolled_at": time.time(),
            })
        return self.get(device_id)

    def get(self, device_id: str) -> Device:
        """The device, or DeviceError if unknown."""
        row = self._row(device_id)
        if row is None:
            raise DeviceError(f"未登记的设备 {device_id}", f"unknown device {device_id}")
        return Device(row["device_id"], row["school_code"], row["school_name"] or "",
                      public_key_from_dict(json.loads(row["public_key"])), row["status"] == "revoked")

    def active(self, device_id: str) -> Device:
        """The device if it is enrolled and not revoked; DeviceError otherwise."""
        device = self.get(device_id)
        if device.revoked:
            raise DeviceError(f"设备 {device_id} 已被吊销，拒收其数据", f"device {device_id} is revoked; its data is refused")
        return device

    def revoke(self, device_id: str) -> None:
        self.get(device_id)
        with transaction(self.db):
            self.db.execute("update devices set status = 'revoked', revoked_at = ? where device_id = ?", [time.time(), device_id])

    def touch(self, device_id: str) -> None:
        with transaction(self.db):
            self.db.execute("update devices set last_seen_at = ? where device_id = ?", [time.time(), device_id])

    def all(self) -> list[dict]:
        return [dict(r) for r in self.db.query(
            "select device_id, school_code, school_name, status, enrolled_at, last_seen_at from devices order by school_code, device_id")]

    def count(self) -> int:
        return self.db.execute("select count(*) from devices").fetchone()[0]

    def _row(self, device_id: str) -> dict | None:
        rows = list(self.db.query("select * from devices where device_id = ?", [device_id]))
        return rows[0] if rows else None
