"""The fleet pages: every device's reported state, and one device's history.

    GET /console/fleet?state=&school=&silent_days=   the list (technician, bureau_admin);
                                                     devices silent longer than
                                                     ``silent_days`` (default 3) highlighted
    GET /console/fleet/<device_id>                   one device: its state and report history
    GET /console/fleet.csv | /console/fleet.xlsx     the list as a file

The data is what devices send at every sync (``hub_sync.hub.fleet``); a device that
never reported shows as "never" with what the registry knows.
"""

from __future__ import annotations

import time

from flask import Response, current_app, render_template, request

from hub_sync.hub.console.auth import console_blueprint, current_account, require_role
from hub_sync.hub.console_errors import ConsoleError, NotFoundError
from hub_sync.hub.fleet import SILENT_DAYS, STATES, Fleet
from hub_sync.hub.report_export import CSV_TYPE, XLSX_TYPE, csv_lines, xlsx_chunks
from hub_sync.hub.report_tables import Column, Table

bp = console_blueprint("console_fleet")
MAX_SILENT_DAYS = 365

COLUMNS = [Column("school_code", "学校代码", "school code"), Column("school_name", "学校", "school"),
           Column("teaching_point", "教学点", "teaching point"), Column("device_id", "设备", "device"),
           Column("state", "状态", "state"), Column("version", "版本", "version"),
           Column("last_contact", "最后联系", "last contact"), Column("sync_success", "最近成功同步", "last content sync"),
           Column("sync_error", "同步错误", "sync error"), Column("disk_free_gb", "剩余空间 GB", "disk free GB"),
           Column("corrupt_files", "损坏文件", "corrupt files"), Column("pending_usage", "待上传记录", "pending usage"),
           Column("failed_messages", "失败消息", "failed messages"), Column("clock_offset_s", "时钟偏差 秒", "clock offset s")]


def _fleet() -> Fleet:
    return Fleet(current_app.extensions["hub"].db)


def _silent_days() -> float:
    raw = request.args.get("silent_days") or str(SILENT_DAYS)
    try:
        days = float(raw)
    except ValueError:
        raise ConsoleError("失联天数应为数字", "silent days must be a number") from None
    if not 0 < days <= MAX_SILENT_DAYS:
        raise ConsoleError(f"失联天数应在 1 到 {MAX_SILENT_DAYS} 之间", f"silent days must be between 1 and {MAX_SILENT_DAYS}")
    return days


def _rows() -> tuple[list[dict], str, str, float]:
    state = request.args.get("state", "")
    if state and state not in STATES:
        raise ConsoleError(f"未知的状态 {state}", f"unknown state {state}")
    school = (request.args.get("school") or "").strip()
    days = _silent_days()
    return _fleet().list(state=state, school_code=school, silent_days=days), state, school, days


@bp.get("/console/fleet")
@require_role("technician")
def fleet_list():
    rows, state, school, days = _rows()
    counts = {s: 0 for s in STATES}
    for r in _fleet().list(silent_days=days):
        counts[r["state"]] += 1
    return render_template("county/fleet.html", me=current_account(), rows=rows, state=state, school=school,
                           silent_days=days, states=STATES, counts=counts)


@bp.get("/console/fleet.<fmt>")
@require_role("technician")
def fleet_export(fmt: str):
    if fmt not in ("csv", "xlsx"):
        raise NotFoundError("没有这种导出格式", "no such export format")
    rows, _, _, _ = _rows()

    def cells(r: dict) -> list:
        r = r | {"last_contact": _when(r["last_seen_at"] or r["received_at"]),
                 "disk_free_gb": round(r["disk_free_bytes"] / 1e9, 1) if r["disk_free_bytes"] is not None else ""}
        return ["" if r.get(c.key) is None else r.get(c.key) for c in COLUMNS]

    table = Table("fleet", "设备", "Fleet", COLUMNS, (cells(r) for r in rows))
    body, ctype = (csv_lines(table), CSV_TYPE) if fmt == "csv" else (xlsx_chunks(table), XLSX_TYPE)
    return Response(body, content_type=ctype, headers={"Content-Disposition": f"attachment; filename=fleet.{fmt}"})


@bp.get("/console/fleet/<device_id>")
@require_role("technician")
def device_page(device_id: str):
    days = _silent_days()
    row = _fleet().get(device_id, silent_days=days)
    if row is None:
        raise NotFoundError(f"没有设备 {device_id}", f"no device {device_id}")
    return render_template("county/device.html", me=current_account(), d=row, history=_fleet().history(device_id),
                           silent_days=days)


@bp.app_template_filter("when")
def _when(ts: float | None) -> str:
    """A hub timestamp as the county's local date and minute ('' for none)."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else ""


@bp.app_template_filter("gb")
def _gb(n: int | None) -> str:
    return "" if n is None else f"{n / 1e9:.1f}"
