"""A school's choice of channels (自主选用): the hub's list and signed subscriptions.

Shared by ``school-edge edge channels|subscribe|unsubscribe`` and the technician's
page. A subscription is signed with the device key, so only this appliance can
change its school's channels; it takes effect at the next sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from hub_sync.formats.enrollment import make_subscription
from hub_sync.core.errors import DeviceError, LinkError
from hub_sync.core.keys import load_signer
from hub_sync.core.tls import client_tls

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.errors import NotProvisionedError

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

CHANNEL_TIMEOUT_S = 15.0


def hub_url(appliance: Appliance) -> str:
    """The provisioned hub's URL, or NotProvisionedError."""
    url = appliance.identity("hub_url")
    if not url:
        raise NotProvisionedError("本设备还没有配置县级平台。请先用U盘或 provision apply 完成配置",
                                  "this appliance has no county hub yet; provision it first")
    return url


def hub_channels(appliance: Appliance) -> list[dict]:
    """The hub's channels, each with ``subscribed``: whether this school's catalogue has it."""
    try:
        data = httpx.get(f"{hub_url(appliance)}/api/v1/hub/channels", timeout=CHANNEL_TIMEOUT_S, verify=client_tls()).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise LinkError("无法连接县级平台，请检查网络后再试", f"cannot reach the hub ({type(exc).__name__}); check the link") from exc
    mine = {r[0] for r in appliance.db.execute("select channel from sync_channels")}
    return [c | {"subscribed": c["id"] in mine} for c in data.get("channels", [])]


def set_subscription(appliance: Appliance, channel: str, on: bool) -> list[str]:
    """Subscribe to (or leave) an optional channel; return the school's channels now."""
    url = hub_url(appliance)
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    signed = make_subscription(signer, appliance.device_id, appliance.school_code, channel, on)
    try:
        resp = httpx.post(f"{url}/api/v1/hub/subscriptions", content=signed, timeout=CHANNEL_TIMEOUT_S, verify=client_tls())
    except httpx.HTTPError as exc:
        raise LinkError("无法连接县级平台，请检查网络后再试", f"cannot reach the hub ({type(exc).__name__}); check the link") from exc
    if resp.status_code != 200:
        try:
            err = resp.json()["error"]
            zh, en = err["message"], err["message_en"]
        except (ValueError, KeyError, TypeError):
            zh = en = f"HTTP {resp.status_code}"
        raise DeviceError(f"县级平台拒绝：{zh}", f"the hub refused: {en}")
    return list(resp.json().get("channels", []))
