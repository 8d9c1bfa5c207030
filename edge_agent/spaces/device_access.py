"""Who may manage the device itself (status, sync, channels, USB sticks).

Technicians and administrators, logged in. A device that is not provisioned yet
has no accounts at all, so until then it answers only its own screen and
keyboard: a request from loopback, judged by ``client_address`` so that a LAN
client behind the nginx front never passes for the device's own console.
"""

from __future__ import annotations

import ipaddress

from flask import current_app, g, request

from edge_agent.spaces.client_address import client_address
from edge_agent.spaces.errors import AuthRequiredError, ForbiddenError
from edge_agent.spaces.people import Person

DEVICE_ROLES = ("technician", "admin")


def from_device_console() -> bool:
    """True if this request comes from the appliance's own screen (loopback)."""
    try:
        return ipaddress.ip_address(client_address(request)).is_loopback
    except ValueError:
        return False


def require_device_staff() -> Person | None:
    """The technician or administrator making this request; ``None`` on an
    unprovisioned device's own console. Raises AuthRequiredError / ForbiddenError."""
    session = g.get("space_session")  # loaded by the blueprint's before_request
    me = session.person if session is not None else None
    provisioned = bool(current_app.extensions["appliance"].identity("hub_url"))
    if me is None and not provisioned:
        if from_device_console():
            return None
        raise ForbiddenError("设备尚未开通：只能在设备本机的屏幕上操作", "the device is not provisioned yet: use its own screen")
    if me is None:
        raise AuthRequiredError("请先登录", "log in first")
    if not me.roles & set(DEVICE_ROLES):
        raise ForbiddenError("设备管理只给技术员和管理员使用", "device management is for technicians and administrators")
    return me
