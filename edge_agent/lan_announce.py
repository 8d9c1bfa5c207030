"""Announcing the appliance on the school LAN with zeroconf, and finding others.

Service type ``_school-edge._tcp.local.``; TXT records ``school`` (一校一码),
``device``, ``api`` (API version) and ``role`` (edge or hub). Tablets and the
teacher's laptop find the appliance without typing an address.

What is announced is what a tablet can reach: the IPv4 addresses of the machine's
real interfaces (read with ``ifaddr``, which zeroconf itself uses), never the
address the host name resolves to (``127.0.1.1`` on Debian). Serving on every
address (``0.0.0.0``) announces every interface's address except loopback; serving
on one address announces that one. The ``announce_interfaces`` setting narrows the
choice to interfaces named by name (``eth0``) or address (``192.168.1.10``); naming
a loopback address announces on loopback (the demo and the tests do).

The announcer re-reads the addresses every ``ANNOUNCE_ADDRESS_POLL_S`` seconds: when
a DHCP renewal moves the appliance to another address it withdraws the old
registration and registers again on the new address (zeroconf binds one socket per
interface address, so a new address needs new sockets). ``close()`` withdraws the
service (goodbye packets), so browsers drop it at once instead of after its TTL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass

import ifaddr
from zeroconf import (
    InterfaceChoice,
    IPVersion,
    ServiceBrowser,
    ServiceInfo,
    ServiceListener,
    Zeroconf,
)

from edge_agent.const import ANNOUNCE_ADDRESS_POLL_S, API_VERSION, SERVICE_TYPE, ZEROCONF_BROWSE_S

__all__ = ["Announced", "Announcer", "announced_addresses", "discover"]

log = logging.getLogger(__name__)

WILDCARD_HOSTS = ("", "0.0.0.0", "::")
FORGET_TIMEOUT_S = 5.0  # zeroconf's loop dropping a registration without goodbyes


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


def _interface_addresses() -> dict[str, str]:
    """Every IPv4 address on this machine's interfaces now, as {address: interface name}."""
    return {ip.ip: adapter.nice_name for adapter in ifaddr.get_adapters() for ip in adapter.ips if ip.is_IPv4}


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address).is_loopback


def _chosen(spec: str, assigned: dict[str, str]) -> set[str]:
    """The addresses the ``announce_interfaces`` setting picks among ``assigned``."""
    if spec.strip() in ("", "all"):
        return set(assigned)
    picked: set[str] = set()
    for token in (t.strip() for t in spec.split(",")):
        if token:
            picked |= {address for address, name in assigned.items() if token in (address, name)}
    return picked


def announced_addresses(host: str, spec: str = "all") -> list[str]:
    """The IPv4 addresses to announce for a server bound to ``host``, given the
    ``announce_interfaces`` setting ``spec``: ``all`` or a comma list of interface
    names and addresses. Empty when none of them is on the machine right now."""
    assigned = _interface_addresses()
    chosen = _chosen(spec, assigned)
    if host in WILDCARD_HOSTS:
        explicit = spec.strip() not in ("", "all")
        # a tablet cannot reach the appliance's loopback: only an explicit setting announces it
        return sorted((a for a in chosen if explicit or not _is_loopback(a)), key=ipaddress.ip_address)
    try:
        ipaddress.ip_address(host)
    except ValueError:  # a name: what it resolves to is what the server listens on
        host = socket.gethostbyname(host)
    return [host] if host in chosen else []


def _browse_interfaces(spec: str) -> InterfaceChoice | list[str]:
    """Where ``discover`` listens: every interface, or the ones the setting names."""
    if spec.strip() in ("", "all"):
        return InterfaceChoice.All
    return sorted(_chosen(spec, _interface_addresses())) or [t.strip() for t in spec.split(",") if t.strip()]


class Announcer:
    """Registers the service while the appliance serves, following address changes;
    ``close()`` withdraws it.

    Registration happens at once (in the constructor); a thread then re-reads the
    addresses every ``poll_s`` seconds. With no address to announce (cable out, no
    lease yet) nothing is registered until one appears."""

    def __init__(self, host: str, port: int, school_code: str, device_id: str, role: str = "edge",
                 interfaces: str = "all", poll_s: float = ANNOUNCE_ADDRESS_POLL_S) -> None:
        self.host, self.port, self.spec, self.poll_s = host, port, interfaces, poll_s
        label = f"school-edge {school_code or 'unprovisioned'} {device_id}"
        self.name = f"{label}.{SERVICE_TYPE}"
        self.server = f"{device_id}.local."
        self.properties = {"school": school_code, "device": device_id, "api": API_VERSION, "role": role}
        self.addresses: tuple[str, ...] = ()
        self.zc: Zeroconf | None = None
        self.info: ServiceInfo | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.refresh()
        if not self.addresses:
            log.warning("no address to announce yet (host %s, announce_interfaces %r); waiting for one",
                        host, interfaces)
        self._thread = threading.Thread(target=self._follow, name="school-edge-announce", daemon=True)
        self._thread.start()

    def refresh(self) -> bool:
        """Re-read the addresses and register again if they changed; True if they did."""
        addresses = tuple(announced_addresses(self.host, self.spec))
        with self._lock:
            if self._stopped.is_set() or addresses == self.addresses:
                return False
            # no goodbye on a change: browsers would see the appliance vanish and come back, and a
            # socket on an address that has gone cannot send one. The new registration's records
            # carry the cache-flush bit, which makes every listener drop the old address (RFC 6762 10.2).
            self._withdraw(goodbye=False)
            if addresses:
                self._register(addresses)
            log.info("announcing %s on %s (was %s)", self.name, ", ".join(addresses) or "nothing",
                     ", ".join(self.addresses) or "nothing")
            self.addresses = addresses
            return True

    def _register(self, addresses: tuple[str, ...]) -> None:
        zc = Zeroconf(interfaces=list(addresses), ip_version=IPVersion.V4Only)
        info = ServiceInfo(SERVICE_TYPE, self.name, parsed_addresses=list(addresses), port=self.port,
                           properties=self.properties, server=self.server)
        try:
            zc.register_service(info)
        except BaseException:
            zc.close()
            raise
        self.zc, self.info = zc, info

    def _withdraw(self, goodbye: bool) -> None:
        zc, info, self.zc, self.info = self.zc, self.info, None, None
        if zc is None or info is None:
            return
        try:
            if goodbye:
                zc.unregister_service(info)
            else:  # forget it in zeroconf's own loop, so close() has nothing to say goodbye to
                asyncio.run_coroutine_threadsafe(_forget_all(zc), zc.loop).result(FORGET_TIMEOUT_S)
        finally:
            zc.close()

    def _follow(self) -> None:
        while not self._stopped.wait(self.poll_s):
            try:
                self.refresh()
            except Exception:  # keep following: the next poll tries again
                log.exception("re-announcing after an address change failed")

    def close(self) -> None:
        """Stop following addresses and withdraw the service."""
        self._stopped.set()
        self._thread.join()
        with self._lock:
            self._withdraw(goodbye=True)
            self.addresses = ()


async def _forget_all(zc: Zeroconf) -> None:
    zc.generate_unregister_all_services()


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
    zc = Zeroconf(interfaces=_browse_interfaces(interfaces), ip_version=IPVersion.V4Only)
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
