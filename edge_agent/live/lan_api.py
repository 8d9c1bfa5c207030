"""``/live/`` on the LAN when the appliance serves without its nginx front (``front = none``):
the same files nginx sends from ``DATA/live/`` (see ``edge_agent.front``), never a WAN request."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from edge_agent.live.store import LAN_DIR

bp = Blueprint("live_lan", __name__)
NO_CACHE = (".m3u8", ".json")  # playlists and status change every segment; segments never change


@bp.get("/live/<path:name>")
def live_file(name: str):
    root = Path(current_app.extensions["appliance"].data_dir) / LAN_DIR
    response = send_from_directory(root, name, max_age=0 if name.endswith(NO_CACHE) else 3600)
    if name.endswith(".m3u8"):
        response.mimetype = "application/vnd.apple.mpegurl"
    return response
