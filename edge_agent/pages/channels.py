"""Channel subscriptions from the technician's page (自主选用: a school picks optional channels).

Same exchange as ``school-edge edge channels|subscribe|unsubscribe`` (``edge_agent.sync_cli``):
the hub's channel list over HTTP, and a subscription signed with the device key
(``hub_sync.enrollment.make_subscription``). The change takes effect at the next sync.

* ``GET  /api/v1/channels``                 the hub's channels, each with ``subscribed``
* ``POST /api/v1/channels/<id>`` {"on": bool}  subscribe or leave an optional channel
"""

from __future__ import annotations

import httpx
from flask import current_app, jsonify

from hub_sync.errors import DeviceError, LinkError
from ..spaces.api_common import body
from ..spaces.errors import ConflictError
from .technician import _device_staff, bp

CHANNEL_TIMEOUT_S = 15.0


def _appliance():
    return current_app.extensions["appliance"]


def _hub_url() -> str:
    url = _appliance().identity("hub_url")
    if not url:
        raise ConflictError("本设备还没有配置县平台。请先用U盘完成配置", "this appliance has no county hub yet; provision it first")
    return url


def _mine() -> set[str]:
    return {r[0] for r in _appliance().db.execute("select channel from sync_channels")}


@bp.get("/api/v1/channels")
def channels():
    _device_staff()
    try:
        data = httpx.get(f"{_hub_url()}/api/v1/hub/channels", timeout=CHANNEL_TIMEOUT_S).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise LinkError("无法连接县级平台，请检查网络后再试", f"cannot reach the hub ({type(exc).__name__}); check the link") from exc
    mine = _mine()
    return jsonify({"channels": [c | {"subscribed": c["id"] in mine} for c in data.get("channels", [])]})


@bp.post("/api/v1/channels/<channel>")
def subscribe(channel: str):
    from hub_sync.enrollment import make_subscription
    from hub_sync.keys import load_signer

    _device_staff()
    appliance = _appliance()
    on = bool(body().get("on", True))
    signer = load_signer(appliance.data_dir / "keys" / "device.pem")
    signed = make_subscription(signer, appliance.device_id, appliance.school_code, channel, on)
    try:
        resp = httpx.post(f"{_hub_url()}/api/v1/hub/subscriptions", content=signed, timeout=CHANNEL_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise LinkError("无法连接县级平台，请检查网络后再试", f"cannot reach the hub ({type(exc).__name__}); check the link") from exc
    if resp.status_code != 200:
        try:
            err = resp.json()["error"]
            raise DeviceError(f"县平台拒绝：{err['message']}", f"the hub refused: {err['message_en']}")
        except (ValueError, KeyError, TypeError):
            raise DeviceError(f"县平台拒绝：HTTP {resp.status_code}", f"the hub refused: HTTP {resp.status_code}") from None
    return jsonify({"channels": resp.json().get("channels", []), "channel": channel, "on": on})
