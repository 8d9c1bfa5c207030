"""Announcing the appliance on the school LAN with zeroconf, and finding others.

Service type ``_school-edge._tcp.local.``; TXT records ``school`` (一校一码),
``device``, ``api`` (API version) and ``role`` (edge or hub). Tablets and the
teacher's laptop find the appliance without typing an address.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceListener,
    Zeroconf,
)

from edge_agent.const import API_VERSION, SERVICE_TYPE, ZEROCONF_BROWSE_S


@dataclass(frozen=True)
class Announced:
    """One appliance found on the LAN."""

    name: str
    addresses: tuple[str, ...]
    port: int
    school_code: str
    device_id: str
    api: str
    role: str

    @property
    def url(self) -> str:
        return f"http://{self.addresses[0]}:{self.port}/" if self.addresses else ""


def _interfaces(spec: str, host: str = ""):
    """zeroconf's interface choice for a setting; loopback-only when serving on loopback.

    An appliance bound to 127.0.0.1 (the demo, tests) is unreachable from the LAN,
    so it announces on loopback only instead of telling the LAN about it.
    """
    if spec in ("", "all"):
        return ["127.0.0.1"] if host.startswith("127.") else InterfaceChoice.All
    return [i.strip() for i in spec.split(",") if i.strip()]


def _addresses_for(host: str) -> list[str]:
    if host not in ("0.0.0.0", "", "::"):
        return [host]
    found = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    return sorted(found) or ["127.0.0.1"]


class Announcer:
    """Registers the service while the appliance serves; ``close()`` withdraws it."""

    def __init__(self, host: str, port: int, school_code: str, device_id: str, role: str = "edge",
                 interfaces: str = "all") -> None:
        self.zc = Zeroconf(interfaces=_interfaces(interfaces, host), ip_version=IPVersion.V4Only)
        label = f"school-edge {school_code or 'unprovisioned'} {device_id}"
        self.info = ServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            parsed_addresses=_addresses_for(host),
            port=port,
            properties={"school": school_code, "device": device_id, "api": API_VERSION, "role": role},
            server=f"{device_id}.local.",
        )
        self.zc.register_service(self.info)

    def close(self) -> None:
        try:
            self.zc.unregister_service(self.info)
        finally:
            self.zc.close()


class _Collector(ServiceListener):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.add(name)

    def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
        self.names.discard(name)


def discover(timeout_s: float = ZEROCONF_BROWSE_S, interfaces: str = "all") -> list[Announced]:
    """Browse the LAN for ``timeout_s`` seconds; return the appliances that answered."""
    zc = Zeroconf(interfaces=_interfaces(interfaces), ip_version=IPVersion.V4Only)
    try:
        collector = _Collector()
        browser = ServiceBrowser(zc, SERVICE_TYPE, collector)
        time.sleep(timeout_s)
        browser.cancel()
        found = []
        for name in sorted(collector.names):
            info = zc.get_service_info(SERVICE_TYPE, name, timeout=1000)
            if info is None:
                continue
            props = {k.decode(): (v or b"").decode() for k, v in info.properties.items()}
            found.append(Announced(name, tuple(info.parsed_addresses()), info.port or 0, props.get("school", ""),
                                   props.get("device", ""), props.get("api", ""), props.get("role", "")))
        return found
    finally:
        zc.close()
