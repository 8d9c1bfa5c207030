"""The usage acknowledgement: the hub's signed answer to a usage batch (pure, no I/O).

The hub makes one per batch it receives (over HTTP or from a stick) and signs it
with its online key as a ``usage-ack`` DSSE envelope; the device verifies it before
it prunes anything. Payload (canonical JSON, optional fields left out when empty)::

    {"device_id": "edge-…", "acked_seq": 4100, "batch_hash": "<sha256 of the batch payload>",
     "chain_hash": "<hash the next batch chains to>", "hub_time": 1760000000.123,
     "stored": 4000, "resend_from": 101, "downlink": {…}}

``acked_seq`` is the highest contiguous sequence the hub holds for the device;
``resend_from`` asks for events again after a gap; ``hub_time`` is the hub's clock
when it answered (a signed time the device's trusted clock may rise to);
``downlink`` carries the county's messages for the device, when any wait.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import canonical_json, content_type, open_envelope, seal

ACK_KIND = "usage-ack"
ACK_CONTENT_TYPE = content_type(ACK_KIND)
_OPTIONAL = ("resend_from", "downlink")


@dataclass(frozen=True)
class UsageAck:
    """What the hub answers to one batch (see the module docstring)."""

    device_id: str
    acked_seq: int
    batch_hash: str
    chain_hash: str
    hub_time: float
    stored: int = 0
    resend_from: int | None = None
    downlink: dict | None = None


def encode_ack(ack: UsageAck) -> bytes:
    """The canonical payload bytes of ``ack`` (what the hub signs)."""
    body = asdict(ack)
    for name in _OPTIONAL:
        if body[name] is None:
            del body[name]
    return canonical_json(body)


def decode_ack(payload: bytes) -> UsageAck:
    """Parse and check an acknowledgement payload; FormatError for anything malformed."""
    try:
        raw = json.loads(payload)
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        ack = UsageAck(_text(raw, "device_id"), _count(raw, "acked_seq"), _text(raw, "batch_hash"),
                       _text(raw, "chain_hash"), _time(raw), _count(raw, "stored", 0),
                       _count(raw, "resend_from", None), raw.get("downlink"))
        if ack.downlink is not None and not isinstance(ack.downlink, dict):
            raise TypeError("downlink is not an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("县平台的确认内容无效", f"acknowledgement body is malformed: {exc}") from exc
    return ack


def seal_ack(ack: UsageAck, signer) -> bytes:
    """The acknowledgement as a DSSE envelope signed by ``signer`` (the hub's online key)."""
    return seal(ACK_KIND, encode_ack(ack), signer)


def open_ack(envelope: bytes, hub_key) -> UsageAck:
    """Verify an acknowledgement envelope against ``hub_key`` and decode it.

    FormatError when it is not an acknowledgement, SignatureError when the hub's key did not sign it.
    """
    payload, _ = open_envelope(envelope, ACK_KIND, [hub_key])
    return decode_ack(payload)


_MISSING = object()


def _text(raw: dict, name: str) -> str:
    value = raw[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not text")
    return value


def _count(raw: dict, name: str, default=_MISSING):
    value = raw.get(name, default)
    if value is _MISSING:
        raise KeyError(name)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} is not a count")
    return value


def _time(raw: dict) -> float:
    value = raw["hub_time"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError("hub_time is not a time")
    return float(value)
