"""The device's state report to the hub's fleet page, sent at every sync.

``collect(appliance)`` reads what a county technician needs to see (version and
firmware, last content sync and its result, free disk, corrupt or quarantined
files, usage events not yet acknowledged, county messages that failed, this
device's clock) into a ``hub_sync.formats.device_report.DeviceReport`` with the
next report number; ``send(appliance, client, hub_url)`` signs it with the device
key and posts it. A failed send is logged and changes nothing but the number
(the hub keeps only a report newer than the one it holds, so skipping numbers is
harmless): the report never holds a sync up.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import httpx

from hub_sync.core.keys import load_signer
from hub_sync.core.sqlite_db import transaction
from hub_sync.formats.device_report import REPORT_CONTENT_TYPE, DeviceReport, seal_report

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.sync.downlink import status as downlink_status
from edge_agent.sync.schema import sync_value

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

REPORT_PATH = "/api/v1/hub/device-report"
SEQ_KEY = "device_report_seq"


def firmware_summary(appliance: Appliance) -> dict:
    """The firmware's own summary (version, slot, last update result)."""
    from firmware.state import summary

    return summary(appliance.data_dir)


def next_seq(appliance: Appliance) -> int:
    """Take the next report number (kept in ``sync_state``; never reused)."""
    with transaction(appliance.db):
        seq = int(sync_value(appliance.db, SEQ_KEY, "0")) + 1
        appliance.db.execute("insert or replace into sync_state (key, value) values (?, ?)", [SEQ_KEY, str(seq)])
    return seq


def collect(appliance: Appliance) -> DeviceReport:
    """This device's state now, as a report with the next number."""
    import json
    import shutil

    db = appliance.db
    firmware = firmware_summary(appliance)
    points = json.loads(appliance.identity("teaching_points", "[]") or "[]")
    return DeviceReport(
        device_id=appliance.device_id, school_code=appliance.school_code, seq=next_seq(appliance), sent_at=time.time(),
        version=str(firmware.get("version", "")), teaching_point=str(points[0]) if points else "",
        firmware=firmware,
        content_sync={"last_attempt": sync_value(db, "last_attempt_at"), "last_success": sync_value(db, "last_success_at"),
                      "last_error": sync_value(db, "last_error")},
        disk_free_bytes=shutil.disk_usage(appliance.data_dir).free, corrupt_files=appliance.integrity.corrupt_count(),
        pending_usage=appliance.journal.pending_count(), failed_messages=downlink_status(db)["hub_messages_failed"])


def sealed(appliance: Appliance) -> bytes:
    """A fresh report signed with the device key."""
    return seal_report(collect(appliance), load_signer(appliance.data_dir / DEVICE_KEY_FILE))


def send(appliance: Appliance, client: httpx.Client, hub_url: str) -> dict | None:
    """Post a fresh report; the hub's answer (``stored``, ``clock_offset_s``) or None when it failed (logged)."""
    try:
        response = client.post(hub_url.rstrip("/") + REPORT_PATH, content=sealed(appliance),
                               headers={"Content-Type": REPORT_CONTENT_TYPE})
        if response.status_code != 200:
            log.warning("hub refused the device report (HTTP %d): %s", response.status_code, response.text[:300])
            return None
        return response.json()
    except (httpx.HTTPError, ValueError, OSError) as exc:
        log.warning("device report not sent: %s", exc)
        return None
