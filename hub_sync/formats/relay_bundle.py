"""What a county hub relays to its province (pure, no I/O): the device roster, relay
bundles and the province's receipts, each a DSSE envelope over canonical JSON.

* ``device-roster`` (signed by the county's relay key): every device the county
  registered, ``{"county", "issued_at", "devices": [{"device", "school", "school_name",
  "public_key", "status", "enrolled_at", "revoked_at"}]}``. It is the county's
  countersignature of its devices' keys: the province verifies each usage batch
  against the key the county's roster names, so a device signature is checked end
  to end and a device the county never registered (or revoked) is refused.
* ``relay-bundle`` (county relay key): ``{"county", "relay_seq", "outbox": [first,
  last], "envelopes": [base64 of the device's usage-batch envelope, untouched],
  "summary": {school: {day: events}}}``. ``relay_seq`` numbers the county's bundles
  1, 2, 3 ...; ``summary`` is the roll-up of the included batches (events per school
  per county day), which the province checks against the batches' headers.
* ``relay-receipt`` (province relay key): ``{"county", "relay_seq", "bundle",
  "accepted": n, "refused": [{"device", "first", "last", "zh", "en"}], "province_time"}``;
  ``bundle`` is the sha256 of the bundle envelope it answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import canonical_json, content_type

ROSTER_KIND = "device-roster"
BUNDLE_KIND = "relay-bundle"
RECEIPT_KIND = "relay-receipt"
ROSTER_CONTENT_TYPE = content_type(ROSTER_KIND)
BUNDLE_CONTENT_TYPE = content_type(BUNDLE_KIND)
RECEIPT_CONTENT_TYPE = content_type(RECEIPT_KIND)
DEVICE_STATUSES = ("active", "revoked")


@dataclass(frozen=True)
class RosterDevice:
    device_id: str
    school_code: str
    school_name: str
    public_key: dict
    status: str
    enrolled_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class Roster:
    county: str
    issued_at: float
    devices: list[RosterDevice]


@dataclass(frozen=True)
class Bundle:
    county: str
    relay_seq: int
    outbox: tuple[int, int]
    envelopes: list[bytes]
    summary: dict[str, dict[str, int]]
    # when the county stored each envelope (its clock): the province takes a batch of a device
    # the county revoked only if it was stored before the revocation; None from an older county
    received: list[float] | None = None


@dataclass(frozen=True)
class Refusal:
    device_id: str
    first_seq: int
    last_seq: int
    zh: str
    en: str

    def line(self) -> str:
        """The refusal as one line (logs, ``hub relay status``)."""
        return f"{self.device_id} {self.first_seq}-{self.last_seq}: {self.zh} / {self.en}"


@dataclass(frozen=True)
class Receipt:
    county: str
    relay_seq: int
    bundle_hash: str
    accepted: int
    refused: list[Refusal] = field(default_factory=list)
    province_time: float = 0.0


def envelope_hash(envelope: bytes) -> str:
    """The name of a signed bundle (what a receipt answers)."""
    return hashlib.sha256(envelope).hexdigest()


def peek_county(envelope: bytes) -> str:
    """The (not yet verified) county an envelope claims to come from, to find its key."""
    try:
        payload = json.loads(base64.b64decode(json.loads(envelope)["payload"], validate=True))
        return str(payload["county"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("转发数据格式无效", f"not a county relay envelope: {exc}") from exc


def encode_roster(roster: Roster) -> bytes:
    return canonical_json({"county": roster.county, "issued_at": roster.issued_at, "devices": [
        {"device": d.device_id, "school": d.school_code, "school_name": d.school_name, "public_key": d.public_key,
         "status": d.status, "enrolled_at": d.enrolled_at, "revoked_at": d.revoked_at} for d in roster.devices]})


def decode_roster(payload: bytes) -> Roster:
    try:
        raw = json.loads(payload)
        devices = [RosterDevice(str(d["device"]), str(d["school"]), str(d.get("school_name") or ""), dict(d["public_key"]),
                                str(d["status"]), _time(d.get("enrolled_at")), _time(d.get("revoked_at")))
                   for d in raw["devices"]]
        roster = Roster(str(raw["county"]), float(raw["issued_at"]), devices)
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError("设备名单格式无效", f"malformed device roster: {exc}") from exc
    if any(d.status not in DEVICE_STATUSES for d in devices):
        raise FormatError("设备名单中的设备状态无效", "device roster names an unknown device status")
    return roster


def encode_bundle(bundle: Bundle) -> bytes:
    body = {"county": bundle.county, "relay_seq": bundle.relay_seq, "outbox": list(bundle.outbox),
            "envelopes": [base64.b64encode(e).decode("ascii") for e in bundle.envelopes], "summary": bundle.summary}
    if bundle.received is not None:
        body["received"] = list(bundle.received)
    return canonical_json(body)


def decode_bundle(payload: bytes) -> Bundle:
    try:
        raw = json.loads(payload)
        envelopes = [base64.b64decode(e, validate=True) for e in raw["envelopes"]]
        summary = {str(s): {str(d): int(n) for d, n in days.items()} for s, days in raw["summary"].items()}
        first, last = (int(x) for x in raw["outbox"])
        received = raw.get("received")
        received = None if received is None else [float(t) for t in received]
        bundle = Bundle(str(raw["county"]), int(raw["relay_seq"]), (first, last), envelopes, summary, received)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError("转发包格式无效", f"malformed relay bundle: {exc}") from exc
    if received is not None and len(received) != len(envelopes):
        raise FormatError("转发包的接收时间与数据包数目不符", "relay bundle lists another number of receive times than batches")
    if bundle.relay_seq < 1 or not envelopes:
        raise FormatError("转发包的序号或内容无效", "relay bundle has a bad sequence number or no batches")
    return bundle


def encode_receipt(receipt: Receipt) -> bytes:
    return canonical_json({"county": receipt.county, "relay_seq": receipt.relay_seq, "bundle": receipt.bundle_hash,
                           "accepted": receipt.accepted, "province_time": receipt.province_time,
                           "refused": [{"device": r.device_id, "first": r.first_seq, "last": r.last_seq, "zh": r.zh, "en": r.en}
                                       for r in receipt.refused]})


def decode_receipt(payload: bytes) -> Receipt:
    try:
        raw = json.loads(payload)
        refused = [Refusal(str(r["device"]), int(r["first"]), int(r["last"]), str(r["zh"]), str(r["en"]))
                   for r in raw["refused"]]
        return Receipt(str(raw["county"]), int(raw["relay_seq"]), str(raw["bundle"]), int(raw["accepted"]), refused,
                       float(raw["province_time"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError("省级平台的回执格式无效", f"malformed relay receipt: {exc}") from exc


def _time(value) -> float | None:
    return None if value is None else float(value)
