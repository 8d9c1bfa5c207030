"""Channel subscriptions from the technician's page (自主选用: a school picks optional channels).

Same exchange as ``school-edge edge channels|subscribe|unsubscribe`` (``edge_agent.sync_cli``):
the hub's channel list over HTTP, and a subscription signed with the device key
(``edge_agent.sync.channel_choice``). The change takes effect at the next sync.

* ``GET  /api/v1/channels``                 the hub's channels, each with ``subscribed``
* ``POST /api/v1/channels/<id>`` {"on": bool}  subscribe or leave an optional channel
"""

from __future__ import annotations

from flask import current_app, jsonify

from edge_agent.sync.channel_choice import hub_channels, set_subscription
from edge_agent.spaces.api_common import body
from edge_agent.pages.spaces_bridge import space_blueprint
from edge_agent.pages.technician import _device_staff

bp = space_blueprint("channels", "/login")


@bp.get("/api/v1/channels")
def channels():
    _device_staff()
    return jsonify({"channels": hub_channels(current_app.extensions["appliance"])})


@bp.post("/api/v1/channels/<channel>")
def subscribe(channel: str):
    _device_staff()
    on = bool(body().get("on", True))
    return jsonify({"channels": set_subscription(current_app.extensions["appliance"], channel, on),
                    "channel": channel, "on": on})
