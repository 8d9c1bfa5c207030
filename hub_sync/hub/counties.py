"""The province's counties: their relay keys, the devices their rosters registered, and
each relayed bundle's outcome (all SQL of the province side of the relay).

A county is added by the province bureau with its relay public key (``hub county add``).
Its device roster (``formats.relay_bundle``, signed by that key) puts its devices in
the province's ``devices`` table with ``county`` set, so the usage batches it relays
verify against exactly the keys the county registered, through the same ``UsageIngest``
a county runs. A roster never moves a device to another county, never changes a
device's key and never brings a revoked device back; an older roster than the one
taken is refused whole.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from securesystemslib.signer import Key

from hub_sync.core.errors import DeviceError, FormatError, SignatureError
from hub_sync.core.keys import public_key_from_dict
from hub_sync.formats.relay_bundle import Roster
from hub_sync.hub.database import Database, transaction


class CountyRefused(SignatureError):
    """A county the province does not know, or revoked: everything it sends is refused."""

    code = "county_refused"
    http_status = 403


@dataclass(frozen=True)
class County:
    code: str
    name: str
    public_key: Key
    revoked: bool
    relay_cursor: int
    roster_at: float
    last_relay_at: float | None


@dataclass(frozen=True)
class BundleOutcome:
    bundle_hash: str
    receipt: bytes


class Counties:
    """The counties relaying to this (province) hub."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, code: str, name: str, public_key: dict) -> County:
        """Register a county and its relay key; the same key again is confirmed, another refused."""
        code = code.strip()
        if not code:
            raise FormatError("县代码不能为空", "the county code is empty")
        key = public_key_from_dict(public_key)
        with transaction(self.db):
            row = self.db.execute("select public_key from relay_counties where county = :c", {"c": code}).fetchone()
            if row is not None:
                if json.loads(row[0])["keyid"] != key.keyid:
                    raise DeviceError(f"县 {code} 已用另一把中继密钥登记，拒绝覆盖",
                                      f"county {code} is registered with another relay key; refusing to replace it")
                return self.get(code)
            self.db.execute("insert into relay_counties (county, name, public_key, status, added_at)"
                            " values (:c, :n, :k, 'active', :now)",
                            {"c": code, "n": name, "k": json.dumps(public_key, sort_keys=True), "now": time.time()})
        return self.get(code)

    def get(self, code: str) -> County:
        row = self.db.execute("select county, name, public_key, status, relay_cursor, roster_at, last_relay_at"
                              " from relay_counties where county = :c", {"c": code}).fetchone()
        if row is None:
            raise CountyRefused(f"未登记的县 {code}：其转发数据整包拒收",
                                f"unknown county {code}: not registered at this province; refused whole")
        return County(row[0], row[1], public_key_from_dict(json.loads(row[2])), row[3] == "revoked", row[4], row[5], row[6])

    def active(self, code: str) -> County:
        county = self.get(code)
        if county.revoked:
            raise CountyRefused(f"县 {code} 已被吊销：其转发数据整包拒收", f"county {code} is revoked: refused whole")
        return county

    def revoke(self, code: str) -> County:
        with transaction(self.db):
            if self.get(code).revoked:
                raise DeviceError(f"县 {code} 已经被吊销", f"county {code} is already revoked")
            self.db.execute("update relay_counties set status = 'revoked', revoked_at = :now where county = :c",
                            {"now": time.time(), "c": code})
        return self.get(code)

    def all(self) -> list[dict]:
        """Every county with its devices, schools and relay state (``hub county list``)."""
        rows = self.db.query("select county, name, status, added_at, relay_cursor, last_relay_at from relay_counties"
                             " order by county")
        counts = {c: (d, s) for c, d, s in self.db.execute(
            "select county, count(*), count(distinct school_code) from devices where county is not null group by county")}
        return [r | {"devices": counts.get(r["county"], (0, 0))[0], "schools": counts.get(r["county"], (0, 0))[1]}
                for r in rows]

    def codes(self) -> list[tuple[str, str]]:
        """(code, name) of every county (the report's scope form)."""
        return [(c, n or c) for c, n in self.db.execute("select county, name from relay_counties order by county")]

    # -- the roster ------------------------------------------------------------------
    def take_roster(self, county: County, roster: Roster) -> tuple[int, int, list[str]]:
        """Apply a verified roster of ``county``: (added, revoked, refusal lines). An older roster
        than the newest taken is refused whole (a county replaying an old roster cannot undo a
        revocation)."""
        added, revoked, refused = 0, 0, []
        with transaction(self.db):
            self.db.lock(f"relay-county-{county.code}")
            taken = self.db.scalar("select roster_at from relay_counties where county = :c", {"c": county.code})
            if roster.issued_at < float(taken or 0):
                raise FormatError(f"县 {county.code} 的设备名单比已收到的旧，整份拒收",
                                  f"county {county.code} sent a device roster older than the one held; refused whole")
            for d in roster.devices:
                row = self.db.execute("select county, public_key, status from devices where device_id = :d",
                                      {"d": d.device_id}).fetchone()
                if row is None:
                    if d.status != "active":
                        continue  # revoked before the province ever heard of it: nothing to keep
                    public_key_from_dict(d.public_key)
                    self.db.execute(
                        "insert into devices (device_id, school_code, school_name, public_key, status, enrolled_at,"
                        " downlink_start, county) values (:d, :s, :n, :k, 'active', :at, 0, :c)",
                        {"d": d.device_id, "s": d.school_code, "n": d.school_name,
                         "k": json.dumps(d.public_key, sort_keys=True), "at": d.enrolled_at or time.time(), "c": county.code})
                    added += 1
                    continue
                owner, key, status = row
                if owner != county.code:
                    refused.append(f"{d.device_id}: 属于另一个县，不能由 {county.code} 登记 / belongs to another county,"
                                   f" not registered by {county.code}")
                elif json.loads(key)["keyid"] != d.public_key.get("keyid"):
                    refused.append(f"{d.device_id}: 名单中的密钥与已登记的不同 / the roster names another key than registered")
                elif d.status == "revoked" and status != "revoked":
                    self.db.execute("update devices set status = 'revoked', revoked_at = :at where device_id = :d",
                                    {"at": d.revoked_at or time.time(), "d": d.device_id})
                    revoked += 1
            self.db.execute("update relay_counties set roster_at = :at where county = :c",
                            {"at": roster.issued_at, "c": county.code})
        return added, revoked, refused

    def device_county(self, device_id: str) -> tuple[str | None, float | None] | None:
        """(county, when the county revoked it or None) of a device the province holds, or None."""
        row = self.db.execute("select county, status, revoked_at from devices where device_id = :d",
                              {"d": device_id}).fetchone()
        return (row[0], (row[2] or 0.0) if row[1] == "revoked" else None) if row else None

    # -- bundles -----------------------------------------------------------------------
    def outcome(self, county: str, relay_seq: int) -> BundleOutcome | None:
        row = self.db.execute("select bundle_hash, receipt from relay_bundles where county = :c and relay_seq = :s",
                              {"c": county, "s": relay_seq}).fetchone()
        return BundleOutcome(row[0], bytes(row[1])) if row else None

    def record(self, county: str, relay_seq: int, bundle_hash: str, accepted: int, refused: int, summary: dict,
               receipt: bytes) -> BundleOutcome:
        """Keep a bundle's outcome and move the county's cursor; the first outcome recorded wins."""
        now = time.time()
        with transaction(self.db):
            self.db.lock(f"relay-county-{county}")
            self.db.execute(
                "insert into relay_bundles (county, relay_seq, bundle_hash, accepted, refused, summary, receipt, received_at)"
                " values (:c, :s, :h, :a, :r, :sum, :receipt, :now) on conflict (county, relay_seq) do nothing",
                {"c": county, "s": relay_seq, "h": bundle_hash, "a": accepted, "r": refused,
                 "sum": json.dumps(summary, sort_keys=True), "receipt": receipt, "now": now})
            self.db.execute("update relay_counties set relay_cursor = case when relay_cursor < :s then :s else relay_cursor end,"
                            " last_relay_at = :now where county = :c", {"s": relay_seq, "now": now, "c": county})
        return self.outcome(county, relay_seq)
