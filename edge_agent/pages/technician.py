"""The technician's page: device status, sync now with live progress, recent log.

Status comes from ``Appliance.status()`` (the same dict ``/api/v1/status``
returns); the page refreshes it from that API. The log view shows the last
lines this process logged, kept in a small ring so a technician on site does
not need a shell.
"""

from __future__ import annotations

import collections
import logging
import threading
import time

from flask import Blueprint, current_app, jsonify, render_template

from .errors import page_errors

LOG_LINES = 200

bp = Blueprint("technician", __name__)
page_errors(bp)


class LogRing(logging.Handler):
    """Keeps the last ``LOG_LINES`` log records of this process, formatted."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[dict] = collections.deque(maxlen=size)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = {"ts": record.created, "level": record.levelname, "name": record.name, "message": record.getMessage()}
        except Exception:  # a bad log call must never break the page that logged it
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


@bp.get("/technician")
def status_page():
    install_log_ring()
    status = appliance().status()
    events = appliance().journal.pending(max(0, appliance().journal.last_seq() - 20), 20)
    return render_template("technician.html", status=status, events=list(reversed(events)),
                           log=_RING.recent()[:50], now=time.time())


@bp.get("/technician/log.json")
def log_json():
    return jsonify({"lines": _RING.recent()})
