"""The technician's and administrator's page: device status, "sync now" with live
progress, channel subscriptions, roster import with its error list, recent log.

Status comes from ``Appliance.status()`` (the same dict ``/api/v1/status``
returns) and is refreshed from that API. Roster import posts to the spaces'
``/api/v1/roster``. The log view shows the last lines this process logged, kept
in a small ring so a technician on site needs no shell.
"""

from __future__ import annotations

import collections
import logging
import threading

from flask import current_app, jsonify, render_template, request

from edge_agent.spaces.errors import AuthRequiredError, ForbiddenError
from edge_agent.pages.spaces_bridge import space_blueprint, viewer
from edge_agent.sync.sync_runner import SyncRun


LOG_LINES = 200
DEVICE_ROLES = frozenset({"technician", "admin"})
LOOPBACK = ("127.0.0.1", "::1")

bp = space_blueprint("technician", "/login")


class LogRing(logging.Handler):
    """Keeps the last ``LOG_LINES`` log records of this process."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[dict] = collections.deque(maxlen=size)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = {"ts": record.created, "level": record.levelname, "name": record.name, "message": record.getMessage()}
        except Exception:  # a bad log call must never break the request that logged it
            return
        with self._guard:
            self.lines.append(line)

    def recent(self) -> list[dict]:
        with self._guard:
            return list(reversed(self.lines))


_RING = LogRing()


def install_log_ring() -> LogRing:
    root = logging.getLogger()
    if _RING not in root.handlers:
        root.addHandler(_RING)
    return _RING


def appliance():
    return current_app.extensions["appliance"]


def _device_staff():
    me = viewer()
    if me is None and not appliance().identity("hub_url") and request.remote_addr in LOOPBACK:
        return None  # a device not yet provisioned has no accounts: its own screen may set it up (as usb_api)
    if me is None:
        raise AuthRequiredError("请先登录", "log in first")
    if not me.roles & DEVICE_ROLES:
        raise ForbiddenError("设备管理页面只给技术员和管理员使用", "device management is for technicians and administrators")
    return me


def link_state(status: dict) -> str:
    """unset, ok or failing, from the sync status lines."""
    if status.get("hub_url", "-") in ("-", ""):
        return "unset"
    return "failing" if status.get("last_sync_error", "-") not in ("-", "") else "ok"


@bp.get("/technician")
def status_page():
    me = _device_staff()
    install_log_ring()
    status = appliance().status()
    journal = appliance().journal
    events = journal.pending(max(0, journal.last_seq() - 20), 20)
    return render_template("technician.html", status=status, link=link_state(status), events=list(reversed(events)),
                           log=_RING.recent()[:50], channels=_channels(), is_admin=me is not None and "admin" in me.roles,
                           sync=SyncRun(appliance()).read())


def _channels() -> list[dict]:
    rows = appliance().db.execute("select channel, title, mandatory, version from sync_channels order by channel").fetchall()
    return [{"channel": c, "title": t, "mandatory": bool(m), "version": v} for c, t, m, v in rows]


@bp.post("/api/v1/sync")
def sync_now():
    _device_staff()
    return jsonify(SyncRun(appliance()).start()), 202


@bp.get("/api/v1/sync/progress")
def sync_progress():
    _device_staff()
    return jsonify(SyncRun(appliance()).read())


@bp.get("/technician/log.json")
def log_json():
    _device_staff()
    return jsonify({"lines": _RING.recent()})
