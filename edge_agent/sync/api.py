"""The sync's JSON API for the technician's page and scripts.

* ``POST /api/v1/sync``                      start a sync now (202; progress below)
* ``GET  /api/v1/sync/progress``             the running or last sync's progress
* ``GET  /api/v1/channels``                  the hub's channels, each with ``subscribed``
* ``POST /api/v1/channels/<id>`` {"on": bool}  subscribe to or leave an optional channel (自主选用),
                                              signed with the device key; effective at the next sync

Same work as ``school-edge edge sync|channels|subscribe|unsubscribe``. Only a
technician or administrator (or the console of a device not yet provisioned).
"""

from __future__ import annotations

from flask import current_app, jsonify

from edge_agent.spaces.api_common import blueprint, body
from edge_agent.spaces.device_access import require_device_staff
from edge_agent.sync.channel_choice import hub_channels, set_subscription
from edge_agent.sync.sync_runner import SyncRun

bp = blueprint("sync_api")


def _appliance():
    return current_app.extensions["appliance"]


@bp.post("/api/v1/sync")
def sync_now():
    require_device_staff()
    return jsonify(SyncRun(_appliance()).start()), 202


@bp.get("/api/v1/sync/progress")
def sync_progress():
    require_device_staff()
    return jsonify(SyncRun(_appliance()).read())


@bp.get("/api/v1/channels")
def channels():
    require_device_staff()
    return jsonify({"channels": hub_channels(_appliance())})


@bp.post("/api/v1/channels/<channel>")
def subscribe(channel: str):
    require_device_staff()
    on = bool(body().get("on", True))
    return jsonify({"channels": set_subscription(_appliance(), channel, on), "channel": channel, "on": on})
