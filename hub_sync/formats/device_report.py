"""The device report: a small signed state report a device sends at every sync (pure, no I/O).

A ``device-report`` DSSE envelope, signed by the device key, over canonical JSON::

    {"v": 1, "device": "edge-…", "school": "4401020301", "seq": 17, "sent_at": 1760000000.0,
     "version": "0.9.0", "teaching_point": "岭下教学点", "firmware": {...},
     "content_sync": {"last_attempt": "...", "last_success": "...", "last_error": ""},
     "disk_free_bytes": 123, "corrupt_files": 0, "pending_usage": 0, "failed_messages": 0}

``seq`` counts the device's reports (1, 2, ...): the hub keeps a report only when
its ``seq`` is above the last one it kept, so an old report replayed (or a USB
export carried in late) never overwrites a newer state. ``sent_at`` is the
device's own clock: the hub compares it with its own time on arrival to show the
clock offset. Times in ``content_sync`` are the device's text, shown as sent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import canonical_json, content_type, seal

REPORT_KIND = "device-report"
REPORT_CONTENT_TYPE = content_type(REPORT_KIND)
FORMAT_VERSION = 1
MAX_REPORT_BYTES = 16 * 1024  # a report is a few hundred bytes; anything bigger is not one
MAX_TEXT_CHARS = 500
SYNC_KEYS = ("last_attempt", "last_success", "last_error")


@dataclass(frozen=True)
class DeviceReport:
    """One device's state as it reported it."""

    device_id: str
    school_code: str
    seq: int
    sent_at: float
    version: str
    teaching_point: str = ""
    firmware: dict[str, Any] = field(default_factory=dict)
    content_sync: dict[str, str] = field(default_factory=dict)
    disk_free_bytes: int = 0
    corrupt_files: int = 0
    pending_usage: int = 0
    failed_messages: int = 0

    @property
    def sync_ok(self) -> bool | None:
        """Whether the last content sync succeeded (None: never tried)."""
        if not self.content_sync.get("last_attempt") and not self.content_sync.get("last_success"):
            return None
        return not self.content_sync.get("last_error")


def encode_report(report: DeviceReport) -> bytes:
    """The payload bytes of a report (canonical JSON)."""
    d = asdict(report)
    return canonical_json({"v": FORMAT_VERSION, "device": d.pop("device_id"), "school": d.pop("school_code"), **d})


def seal_report(report: DeviceReport, signer) -> bytes:
    """A report signed by the device key, ready to send."""
    return seal(REPORT_KIND, encode_report(report), signer)


def decode_report(payload: bytes) -> DeviceReport:
    """Parse and check a (verified) payload; FormatError for anything that is not a report."""
    if len(payload) > MAX_REPORT_BYTES:
        raise FormatError("设备状态报告过大", "device report too large")
    try:
        raw = json.loads(payload)
        if not isinstance(raw, dict) or raw.get("v") != FORMAT_VERSION:
            raise ValueError("unsupported version")
        firmware = raw.get("firmware") or {}
        sync = raw.get("content_sync") or {}
        if not isinstance(firmware, dict) or not isinstance(sync, dict):
            raise ValueError("firmware and content_sync must be objects")
        report = DeviceReport(
            device_id=_text(raw["device"]), school_code=_text(raw["school"]), seq=_count(raw["seq"]),
            sent_at=float(raw["sent_at"]), version=_text(raw["version"]), teaching_point=_text(raw.get("teaching_point", "")),
            firmware=firmware, content_sync={k: _text(sync.get(k) or "") for k in SYNC_KEYS},
            disk_free_bytes=_count(raw.get("disk_free_bytes", 0)), corrupt_files=_count(raw.get("corrupt_files", 0)),
            pending_usage=_count(raw.get("pending_usage", 0)), failed_messages=_count(raw.get("failed_messages", 0)))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("设备状态报告格式无效", f"malformed device report: {exc}") from exc
    if report.seq < 1 or not report.device_id:
        raise FormatError("设备状态报告格式无效", "malformed device report: seq must be >= 1 and device set")
    return report


def _text(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"expected a text of at most {MAX_TEXT_CHARS} characters")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("expected a non-negative integer")
    return value
