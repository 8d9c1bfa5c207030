"""The fleet: each device's latest reported state and its history (all SQL here).

``Fleet.record`` stores a verified ``DeviceReport``: the latest state per device in
``fleet_devices`` and every kept report in ``fleet_history``. A report whose
``seq`` is not above the last one kept (a replay, or a USB export carried in after
a newer sync) is ignored. The clock offset is the device's ``sent_at`` minus the
hub's own time on arrival (positive: the device is ahead).

``Fleet.list`` joins the registry (school, last contact, revoked) and names each
device's state: ``revoked``, ``never`` (enrolled, no report yet), ``silent`` (no
contact for more than ``silent_days``), ``warning`` (last content sync failed,
corrupt files or failed messages), ``ok``.
"""

from __future__ import annotations

import json
import time

from hub_sync.formats.device_report import DeviceReport
from hub_sync.hub.database import Database, transaction

STATES = ("ok", "warning", "silent", "never", "revoked")
SILENT_DAYS = 3
HISTORY_KEEP = 500  # reports kept per device (a year of daily syncs and more)
_COLS = ("report_seq", "received_at", "device_time", "clock_offset_s", "version", "teaching_point", "firmware",
         "sync_attempt", "sync_success", "sync_error", "disk_free_bytes", "corrupt_files", "pending_usage",
         "failed_messages")


class Fleet:
    """Device reports in the hub database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, report: DeviceReport, school_code: str, now: float | None = None) -> bool:
        """Keep a verified report of a device of ``school_code``; False (nothing changed) for a replay."""
        now = time.time() if now is None else now
        s = report.content_sync
        values = [report.seq, now, report.sent_at, round(report.sent_at - now, 3), report.version, report.teaching_point,
                  json.dumps(report.firmware, ensure_ascii=False, sort_keys=True), s.get("last_attempt", ""),
                  s.get("last_success", ""), s.get("last_error", ""), report.disk_free_bytes, report.corrupt_files,
                  report.pending_usage, report.failed_messages]
        with transaction(self.db):
            row = self.db.execute("select report_seq from fleet_devices where device_id = ?", [report.device_id]).fetchone()
            if row is not None and report.seq <= row[0]:
                return False
            marks = ", ".join("?" * (len(_COLS) + 1))
            self.db.execute(f"insert into fleet_devices (device_id, school_code, {', '.join(_COLS)}) values (?, {marks})"
                            f" on conflict (device_id) do update set school_code = excluded.school_code,"
                            f" {', '.join(f'{c} = excluded.{c}' for c in _COLS)}", [report.device_id, school_code, *values])
            self.db.execute(f"insert into fleet_history (device_id, {', '.join(_COLS)}) values ({marks})"
                            " on conflict (device_id, report_seq) do nothing", [report.device_id, *values])
            self.db.execute("delete from fleet_history where device_id = ? and report_seq <= ?",
                            [report.device_id, report.seq - HISTORY_KEEP])
        return True

    def list(self, state: str = "", school_code: str = "", silent_days: float = SILENT_DAYS,
             now: float | None = None) -> list[dict]:
        """Every device with its latest report and state, optionally only one state or one school."""
        now = time.time() if now is None else now
        sql = (f"select d.device_id, d.school_code, coalesce(d.school_name, '') as school_name, d.status,"
               f" d.last_seen_at, {', '.join('f.' + c for c in _COLS)} from devices d"
               " left join fleet_devices f on f.device_id = d.device_id")
        params: list = []
        if school_code:
            sql += " where d.school_code = ?"
            params.append(school_code)
        rows = [self._row(dict(r), silent_days, now) for r in self.db.query(sql + " order by d.school_code, d.device_id", params)]
        return [r for r in rows if not state or r["state"] == state]

    def get(self, device_id: str, silent_days: float = SILENT_DAYS, now: float | None = None) -> dict | None:
        rows = [r for r in self.list(silent_days=silent_days, now=now) if r["device_id"] == device_id]
        return rows[0] if rows else None

    def history(self, device_id: str, limit: int = 100) -> list[dict]:
        """The device's kept reports, newest first."""
        return [dict(r) for r in self.db.query(
            f"select {', '.join(_COLS)} from fleet_history where device_id = ? order by report_seq desc limit ?",
            [device_id, limit])]

    def teaching_points(self, school_code: str = "") -> list[dict]:
        """(school, teaching point, devices) for every teaching point a device reported."""
        sql = ("select f.school_code, coalesce(max(d.school_name), '') as school_name, f.teaching_point,"
               f" {self.db.aggregate_strings('f.device_id', ',')} as devices from fleet_devices f"
               " join devices d on d.device_id = f.device_id"
               " where f.teaching_point != ''")
        params: list = []
        if school_code:
            sql += " and f.school_code = ?"
            params.append(school_code)
        return [dict(r) for r in self.db.query(sql + " group by f.school_code, f.teaching_point"
                                               " order by f.school_code, f.teaching_point", params)]

    @staticmethod
    def _row(row: dict, silent_days: float, now: float) -> dict:
        last = row["last_seen_at"] or row["received_at"]
        row["silent_days"] = None if last is None else round((now - last) / 86400, 1)
        row["firmware"] = json.loads(row["firmware"]) if row["firmware"] else {}
        if row["status"] == "revoked":
            row["state"] = "revoked"
        elif row["report_seq"] is None:
            row["state"] = "never"
        elif row["silent_days"] is not None and row["silent_days"] > silent_days:
            row["state"] = "silent"
        elif row["sync_error"] or row["corrupt_files"] or row["failed_messages"]:
            row["state"] = "warning"
        else:
            row["state"] = "ok"
        return row
