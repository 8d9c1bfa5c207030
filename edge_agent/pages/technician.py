"""The technician's and administrator's page: device status, "sync now" with live
progress, channel subscriptions, roster import with its error list, recent log.
Its scripts call the JSON APIs of ``edge_agent.sync.api`` and of the spaces.

Status comes from ``Appliance.status()`` (the same dict ``/api/v1/status``
returns) and is refreshed from that API. Roster import posts to the spaces'
``/api/v1/roster``. The log view shows the last lines this process logged, kept
in a small ring so a technician on site needs no shell.
"""

from __future__ import annotations

import collections
import logging
import threading

from flask import current_app, jsonify, render_template

from edge_agent.spaces.device_access import require_device_staff
from edge_agent.sync.schema import synced_channels
from edge_agent.pages.spaces_bridge import space_blueprint
from edge_agent.sync.sync_runner import SyncRun


LOG_LINES = 200

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


def link_state(status: dict) -> str:
    """unset, ok or failing, from the sync status lines."""
    if status.get("hub_url", "-") in ("-", ""):
        return "unset"
    return "failing" if status.get("last_sync_error", "-") not in ("-", "") else "ok"


@bp.get("/technician")
def status_page():
    me = require_device_staff()
    install_log_ring()
    status = appliance().status()
    journal = appliance().journal
    events = journal.pending(max(0, journal.last_seq() - 20), 20)
    return render_template("technician.html", status=status, link=link_state(status), events=list(reversed(events)),
                           log=_RING.recent()[:50], channels=synced_channels(appliance().db), is_admin=me is not None and "admin" in me.roles,
                           sync=SyncRun(appliance()).read())


@bp.get("/technician/log.json")
def log_json():
    require_device_staff()
    return jsonify({"lines": _RING.recent()})
