"""The LAN test bed itself (``tests/fixtures/lan.py``): the appliance served in its own
network namespace answers the clients' namespace on 10.77.0.1 and nothing on the host."""

from __future__ import annotations

import os

import httpx

from fixtures.lan import APPLIANCE_IP, CLIENT_IPS, NETNS
from hub_sync.core.processes import answers_http

pytestmark = NETNS


def netns_of_this_process() -> str:
    """Run in a namespace by ``Namespace.call``: which network namespace it ran in."""
    return os.readlink("/proc/self/ns/net")


def test_appliance_in_its_namespace_answers_the_clients_and_not_the_host(lan, tmp_path):
    server = lan.serve_edge(tmp_path / "data")
    assert server.base == f"http://{APPLIANCE_IP}:{server.port}"

    status = lan.get(server.base + "/api/v1/status")
    assert status.status_code == 200 and status.json()["device_id"]
    assert lan.get(server.base + "/api/v1/status", source=CLIENT_IPS[-1]).status_code == 200
    # the host's loopback knows nothing of it (only loopback is tried from the host: 10.77.0.1 is not ours there)
    assert not answers_http(f"http://127.0.0.1:{server.port}/api/v1/status")

    assert server.stop() == 0
    with lan.clients.inside():
        assert not answers_http(server.base + "/api/v1/status")


def test_commands_and_functions_run_in_the_namespace_they_are_given(lan):
    here = netns_of_this_process()
    appliance, clients = lan.appliance.call(netns_of_this_process), lan.clients.call(netns_of_this_process)
    assert len({here, appliance, clients}) == 3
    with lan.clients.inside():
        assert netns_of_this_process() == clients
        assert os.readlink("/proc/thread-self/ns/net") == clients
    assert os.readlink("/proc/thread-self/ns/net") == here

    addresses = lan.clients.run("ip", "-4", "-o", "addr", "show").stdout
    assert all(f"inet {ip}/24" in addresses for ip in CLIENT_IPS)
    assert f"inet {APPLIANCE_IP}/24" in lan.appliance.run("ip", "-4", "-o", "addr", "show").stdout


def test_a_cut_link_stops_answering_and_a_restored_one_answers_again(lan, tmp_path):
    server = lan.serve_edge(tmp_path / "data")
    lan.cut()
    with lan.clients.inside():
        assert not answers_http(server.base + "/api/v1/status", timeout_s=1.0)
    lan.restore()
    assert lan.get(server.base + "/api/v1/status").status_code == 200


def test_shaped_link_delivers_at_the_shaped_rate(lan, tmp_path):
    lan.shape("2mbit")
    assert "tbf" in lan.appliance.run("tc", "qdisc", "show", "dev", lan.appliance_if).stdout
    # 256 KiB from the appliance to a client: at 2 Mbit/s at least ~1 s, where the bare veth takes milliseconds
    lan.appliance.popen("python3", "-m", "http.server", "--bind", APPLIANCE_IP, "8000", "--directory", str(tmp_path))
    (tmp_path / "blob").write_bytes(os.urandom(256 * 1024))
    lan.wait_http(lan.appliance.started[-1], f"http://{APPLIANCE_IP}:8000/")
    response = lan.get(f"http://{APPLIANCE_IP}:8000/blob")
    assert len(response.content) == 256 * 1024
    assert response.elapsed.total_seconds() > 0.8
    lan.unshape()
    with lan.clients.inside():
        fast = httpx.get(f"http://{APPLIANCE_IP}:8000/blob", timeout=10)
    assert fast.elapsed.total_seconds() < 0.5
