"""Discovery on a real link: the appliance serves in its own network namespace and
Debian's avahi browses from the clients' namespace across a veth pair
(``tests/fixtures/lan.py``, ``tests/fixtures/avahi.py``).

Served on every address (``--host 0.0.0.0``), the appliance is resolved to its LAN
address, never to 127.x (the host name's address on Debian); a changed address (a DHCP
renewal) is announced within a few polls; stopping the server withdraws the service
(avahi sees the goodbye at once instead of keeping it for the record's 75 minutes);
``announce_interfaces`` limits what is announced."""

from __future__ import annotations

import json
from pathlib import Path

from fixtures.lan import APPLIANCE_IP, NETNS

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import ANNOUNCE_ADDRESS_POLL_S, SERVICE_TYPE
from edge_agent.lan_announce import announced_addresses, discover
from edge_agent.runner import urls_for
from hub_sync.core.processes import wait_until

pytestmark = NETNS

SCHOOL_CODE = "4100000077"
NEW_IP = "10.77.0.11"  # the appliance's address after the "renewal": same subnet, so the clients reach it
SECOND_LAN_IP = "10.77.5.1"  # a second interface of the appliance (e.g. a second Wi-Fi for the staff room)
BROWSE_S = 2.0


def provisioned(data: Path, **settings: str) -> str:
    """A data folder with a school code (and site settings); returns the device id."""
    data.mkdir()
    if settings:
        (data / "settings.json").write_text(json.dumps(settings))
    appliance = Appliance.open(EdgeConfig.load(data))
    try:
        appliance.set_identity(school_code=SCHOOL_CODE)
        return appliance.device_id
    finally:
        appliance.close()


def ours(device_id: str):
    return lambda services: [s for s in services if s.properties.get("device") == device_id]


def add_second_interface(lan) -> str:
    """A second veth pair inside the appliance's namespace, with 10.77.5.1 on one end."""
    lan.appliance.run("ip", "link", "add", "lan2", "type", "veth", "peer", "name", "lan2peer")
    lan.appliance.run("ip", "addr", "add", f"{SECOND_LAN_IP}/24", "dev", "lan2")
    lan.appliance.run("ip", "link", "set", "lan2peer", "up")
    lan.appliance.run("ip", "link", "set", "lan2", "up")
    return "lan2"


def test_appliance_on_all_addresses_is_resolved_to_its_lan_address_and_withdrawn_on_stop(lan, avahi, tmp_path):
    device_id = provisioned(tmp_path / "data")
    watch = avahi.watch(SERVICE_TYPE)
    server = lan.serve_edge(tmp_path / "data", host="0.0.0.0", announce=True)

    [found] = ours(device_id)(avahi.resolve_until(lambda s: ours(device_id)(s), SERVICE_TYPE, "the appliance"))
    assert found.address == APPLIANCE_IP
    assert found.port == server.port
    assert found.host == f"{device_id}.local"
    assert found.name == f"school-edge {SCHOOL_CODE} {device_id}"
    assert found.properties == {"school": SCHOOL_CODE, "device": device_id, "api": "1", "role": "edge"}
    assert lan.get(f"http://{found.address}:{found.port}/api/v1/status").json()["device_id"] == device_id
    assert all(not e.address.startswith("127.") for e in watch.events())

    assert server.stop() == 0
    watch.wait_for(lambda e: e.event == "-" and e.name == found.name, "avahi to see the service withdrawn")
    assert ours(device_id)(avahi.browse(SERVICE_TYPE)) == []


def test_a_changed_address_is_announced_and_the_old_one_dropped(lan, avahi, tmp_path):
    device_id = provisioned(tmp_path / "data")
    server = lan.serve_edge(tmp_path / "data", host="0.0.0.0", announce=True)
    avahi.resolve_until(lambda s: [f.address for f in ours(device_id)(s)] == [APPLIANCE_IP], SERVICE_TYPE,
                        "the first address")

    # a renewal that hands out another address: the new one arrives, then the old one goes
    lan.appliance.run("sysctl", "-w", f"net.ipv4.conf.{lan.appliance_if}.promote_secondaries=1")
    lan.appliance.run("ip", "addr", "add", f"{NEW_IP}/24", "dev", lan.appliance_if)
    lan.appliance.run("ip", "addr", "del", f"{APPLIANCE_IP}/24", "dev", lan.appliance_if)

    [found] = ours(device_id)(avahi.resolve_until(
        lambda s: [f.address for f in ours(device_id)(s)] == [NEW_IP], SERVICE_TYPE, "the new address",
        timeout_s=10 * ANNOUNCE_ADDRESS_POLL_S))
    assert lan.get(f"http://{found.address}:{found.port}/api/v1/status").json()["device_id"] == device_id
    assert server.running()


def test_announce_interfaces_limits_the_announcement_to_the_named_interface(lan, tmp_path):
    second = add_second_interface(lan)
    device_id = provisioned(tmp_path / "data", announce_interfaces=lan.appliance_if)
    lan.serve_edge(tmp_path / "data", host="0.0.0.0", announce=True)

    # python-zeroconf's browser lists every address of a service (avahi-browse shows one per interface)
    [found] = wait_until(lambda: [a for a in lan.clients.call(discover, BROWSE_S) if a.device_id == device_id],
                         30, "zeroconf in the clients' namespace to find the appliance")
    assert found.addresses == (APPLIANCE_IP,)

    everything = lan.appliance.call(announced_addresses, "0.0.0.0", "all")
    assert everything == [APPLIANCE_IP, SECOND_LAN_IP]  # every real interface, loopback left out
    assert lan.appliance.call(announced_addresses, "0.0.0.0", second) == [SECOND_LAN_IP]
    assert lan.appliance.call(announced_addresses, "0.0.0.0", f"lo, {APPLIANCE_IP}") == [APPLIANCE_IP, "127.0.0.1"]
    assert lan.appliance.call(announced_addresses, APPLIANCE_IP, "all") == [APPLIANCE_IP]
    assert lan.appliance.call(announced_addresses, "127.0.0.1", "all") == ["127.0.0.1"]
    assert lan.appliance.call(announced_addresses, "0.0.0.0", "eth9") == []
    # the banner of `edge serve --host 0.0.0.0` shows the addresses a tablet can use, then the device's own
    assert lan.appliance.call(urls_for, "0.0.0.0", 8080, "all") == [
        f"http://{APPLIANCE_IP}:8080/", f"http://{SECOND_LAN_IP}:8080/", "http://127.0.0.1:8080/"]
