"""The hub's HTTP side of the fleet: devices report their state at every sync.

    POST /api/v1/hub/device-report   body: a ``device-report`` DSSE envelope signed by the
                                     device key (Content-Type
                                     application/vnd.school-edge.device-report+json)
                                     200 ``{"stored": true|false, "hub_time": T, "clock_offset_s": S}``
                                     (``stored`` false: a report not newer than the one
                                     held, ignored); 400 malformed, 403 bad signature or
                                     unknown / revoked device; each changes nothing.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from hub_sync.core.errors import FormatError
from hub_sync.formats.device_report import MAX_REPORT_BYTES, REPORT_KIND, decode_report
from hub_sync.hub.fleet import Fleet
from hub_sync.hub.ingest import open_device_envelope
from hub_sync.hub.registry import Registry

bp = Blueprint("hub_fleet", __name__)


@bp.post("/api/v1/hub/device-report")
def device_report():
    hub = current_app.extensions["hub"]
    envelope = request.get_data(cache=False)
    if len(envelope) > 4 * MAX_REPORT_BYTES:
        raise FormatError("设备状态报告过大", "device report too large")
    registry = Registry(hub.db)
    device, payload = open_device_envelope(registry, envelope, REPORT_KIND, "设备状态报告", "device report")
    report = decode_report(payload)
    if report.device_id != device.device_id or report.school_code != device.school_code:
        raise FormatError("设备状态报告的设备或学校与登记的不一致",
                          "device report names another device or school than the one enrolled")
    now = time.time()
    stored = Fleet(hub.db).record(report, device.school_code, now)
    registry.touch(device)
    return jsonify({"stored": stored, "hub_time": now, "clock_offset_s": round(report.sent_at - now, 3)})
