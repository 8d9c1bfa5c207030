"""The hub's device registry: which devices exist, their public keys, revocation,
and the one-time enrollment tokens of provisioning bundles.

A device enrolls with a request signed by its own key (``provisioning``); the hub
stores the public key and uses it to verify everything the device sends up.

A bundle's token (the hub keeps only its sha256) enrolls one device, once, before
it expires (``formats.enrollment.TOKEN_LIFETIME_DAYS`` unless ``provision make``
says otherwise). The same device sending the same request again is confirmed, not
refused: a first sync that lost the hub's answer, or every USB export, resends it.
A device sees only the county messages queued for its school after it enrolled
(``downlink_start``): a replacement device does not inherit its predecessor's queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from securesystemslib.signer import Key

from hub_sync.core.errors import DeviceError
from hub_sync.core.keys import public_key_from_dict
from hub_sync.hub.database import Database, transaction

LAST_SEEN_RESOLUTION_S = 60.0  # "last contact" is kept to the minute: not one write per request


@dataclass(frozen=True)
class Device:
    device_id: str
    school_code: str
    school_name: str
    public_key: Key
    revoked: bool
    downlink_start: int = 0
    last_seen_at: float | None = None


class Registry:
    """Devices known to the hub."""

    def __init__(self, db: Database) -> None:
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
            # the school's last queued message (``downlink``'s table), read in the same write
            # transaction as the insert, so no message falls between the two
            self.db.execute(
                "insert into devices (device_id, school_code, school_name, public_key, status, enrolled_at, downlink_start)"
                " values (?, ?, ?, ?, 'active', ?,"
                " (select coalesce(max(seq), 0) from downlink_messages where school_code = ?))",
                [device_id, school_code, school_name, json.dumps(public_key, sort_keys=True), time.time(), school_code])
        return self.get(device_id)

    # -- enrollment tokens ---------------------------------------------------------
    def add_token(self, token_hash: str, school_code: str, school_name: str, expires_at: float) -> None:
        """Record a new bundle's token (its hash) for ``school_code``, valid until ``expires_at``."""
        with transaction(self.db):
            self.db.execute("insert into enrollment_tokens (token_hash, school_code, school_name, created_at, expires_at)"
                            " values (?, ?, ?, ?, ?)", [token_hash, school_code, school_name, time.time(), expires_at])

    def enroll(self, request: dict, token_hash: str, now: float | None = None) -> Device:
        """Register the device of a verified enrollment request if its token allows it.

        One ``BEGIN IMMEDIATE`` transaction: of two requests with one token, the
        second waits for the first and then sees the token spent. Raises
        DeviceError (unknown, spent or expired token; another key; revoked) with
        nothing changed.
        """
        now = time.time() if now is None else now
        device_id, school_code = request["device_id"], request["school_code"]
        with transaction(self.db):
            token = self.db.execute("select school_code, expires_at, used_by from enrollment_tokens where token_hash = ?"
                                    + self.db.for_update, [token_hash]).fetchone()
            if token is None or token[0] != school_code:
                raise DeviceError("登记请求不属于本平台制作的配置包，已拒绝",
                                  "enrollment request does not match a provisioning bundle of this hub; refused")
            _, expires_at, used_by = token
            if used_by is not None and used_by != device_id:
                raise DeviceError("此配置包的登记令牌已经登记过一台设备，不能再登记另一台。请用 school-edge provision make 制作新的配置包",
                                  "this bundle's enrollment token has already enrolled another device; a token enrolls one "
                                  "device only. Make a new bundle with 'school-edge provision make'")
            if used_by is None and now > expires_at:
                day = time.strftime("%Y-%m-%d", time.localtime(expires_at))
                raise DeviceError(f"此配置包的登记令牌已于 {day} 过期。请用 school-edge provision make 制作新的配置包",
                                  f"this bundle's enrollment token expired on {day}; make a new bundle with "
                                  "'school-edge provision make'")
            device = self.register(device_id, school_code, request["public_key"], str(request.get("school_name", "")))
            if used_by is None:
                self.db.execute("update enrollment_tokens set used_by = ?, used_at = ? where token_hash = ?",
                                [device_id, now, token_hash])
        return device

    def get(self, device_id: str) -> Device:
        """The device, or DeviceError if unknown."""
        row = self._row(device_id)
        if row is None:
            raise DeviceError(f"未登记的设备 {device_id}", f"unknown device {device_id}")
        return Device(row["device_id"], row["school_code"], row["school_name"] or "",
                      public_key_from_dict(json.loads(row["public_key"])), row["status"] == "revoked",
                      row["downlink_start"] or 0, row["last_seen_at"])

    def active(self, device_id: str) -> Device:
        """The device if it is enrolled and not revoked; DeviceError otherwise."""
        device = self.get(device_id)
        if device.revoked:
            raise DeviceError(f"设备 {device_id} 已被吊销，拒收其数据", f"device {device_id} is revoked; its data is refused")
        return device

    def revoke(self, device_id: str) -> Device:
        """Mark a device revoked: from now on everything it sends is refused. Raises
        DeviceError for an unknown or already revoked device (nothing changed)."""
        with transaction(self.db):
            device = self.get(device_id)
            if device.revoked:
                raise DeviceError(f"设备 {device_id} 已经被吊销", f"device {device_id} is already revoked")
            self.db.execute("update devices set status = 'revoked', revoked_at = ? where device_id = ?", [time.time(), device_id])
        return self.get(device_id)

    def touch(self, device: Device | str, every_s: float = LAST_SEEN_RESOLUTION_S) -> None:
        """Remember that ``device`` was heard from (a verified request); written at most every ``every_s``."""
        if isinstance(device, str):
            device = self.get(device)
        now = time.time()
        if device.last_seen_at is not None and now - device.last_seen_at < every_s:
            return  # a sync makes several requests: one write is enough
        with transaction(self.db):
            self.db.execute("update devices set last_seen_at = ? where device_id = ?", [now, device.device_id])

    def all(self) -> list[dict]:
        """Every device: id, school, state and times (enrolled, revoked, last heard from)."""
        return [dict(r) for r in self.db.query(
            "select device_id, school_code, school_name, status, enrolled_at, revoked_at, last_seen_at from devices"
            " order by school_code, enrolled_at, device_id")]

    def count(self) -> int:
        return self.db.execute("select count(*) from devices").fetchone()[0]

    def _row(self, device_id: str) -> dict | None:
        rows = list(self.db.query("select * from devices where device_id = ?", [device_id]))
        return rows[0] if rows else None
