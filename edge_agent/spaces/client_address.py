"""Which client sent a request: the address logins are throttled by.

The WSGI server's ``REMOTE_ADDR`` is the peer of the connection. Behind the
nginx front that peer is the front itself (a unix socket: an empty address; or
loopback), so the front passes the LAN client's address in ``X-Real-IP``. That
header is believed only when the setting ``trust_front_header`` is on *and* the
request came from the front (unix socket or loopback peer): a tablet on the LAN
that sends its own ``X-Real-IP`` straight to the app is still known by its real
address. With the setting off (the default, no front) the header is ignored.
"""

from __future__ import annotations

import ipaddress

from flask import Request, current_app

UNKNOWN = "unknown"


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def from_front(remote_addr: str) -> bool:
    """True if the peer is where the front connects from: a unix socket or loopback."""
    if not remote_addr:
        return True
    ip = _ip(remote_addr)
    return ip is not None and ip.is_loopback


def client_address(request: Request, trust_front_header: bool | None = None) -> str:
    """The client's address, as text (``unknown`` if there is none).

    ``trust_front_header`` defaults to the app's setting of that name.
    """
    if trust_front_header is None:
        config = current_app.extensions.get("edge_config")
        trust_front_header = bool(getattr(config, "trust_front_header", False))
    remote = request.environ.get("REMOTE_ADDR") or ""
    if trust_front_header and from_front(remote):
        real = _ip(request.headers.get("X-Real-IP", ""))
        if real is not None:
            return str(real)
    ip = _ip(remote)
    return str(ip) if ip is not None else (remote or UNKNOWN)
