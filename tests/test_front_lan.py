"""The nginx front across a real link: the appliance on 10.77.0.1 in one network
namespace, tablets on 10.77.0.2-9 in another. Login rate per client address, a
slowloris crowd from one address while the others are served, files sent by nginx."""

from __future__ import annotations

import json
import socket
import time

from fixtures.lan import APPLIANCE_IP, CLIENT_IPS, NETNS

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import DEMO_SCHOOL_CODE, load_sample_library

pytestmark = NETNS

TIMEOUT_S = 3
SLOW_CONNECTIONS = 300


def _library(data) -> str:
    """A data folder with the sample library; returns the URL of one lesson picture."""
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1}))
    try:
        appliance.set_identity(school_code=DEMO_SCHOOL_CODE)
        load_sample_library(appliance)
        f = appliance.catalogue.get("sample-00000").files[1]
        return f"/content/{f.sha256}/{f.path}"
    finally:
        appliance.close()


def test_login_rate_is_per_client_address_across_the_link(lan, tmp_path):
    data = tmp_path / "data"
    _library(data)
    (data / "settings.json").write_text(json.dumps({"login_rate_per_min": 6}))
    server = lan.serve_edge(data, "--host", "0.0.0.0")
    login = server.base + "/api/v1/login/staff"
    guess = {"staff_number": "t001", "password": "wrong"}
    codes = [lan.request("POST", login, CLIENT_IPS[0], json=guess).status_code for _ in range(12)]
    assert codes.count(429) >= 6, codes
    refused = lan.request("POST", login, CLIENT_IPS[0], json=guess)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_logins"
    # another tablet is not throttled by its neighbour's guesses: the app answers it
    other = lan.request("POST", login, CLIENT_IPS[1], json=guess)
    assert other.status_code != 429 and other.json()["error"]["code"] != "too_many_logins"
    assert lan.get(server.base + "/api/v1/status", CLIENT_IPS[2]).status_code == 200


def _hold_and_measure(host: str, port: int, source: str, count: int, probes: int) -> tuple[list[float], int]:
    """In the clients namespace: hold ``count`` half-sent requests from ``source``, time
    ``probes`` status requests from another address meanwhile, then see the held ones cut."""
    import httpx

    held = []
    for _ in range(count):
        s = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    times = []
    transport = httpx.HTTPTransport(local_address=CLIENT_IPS[4])
    with httpx.Client(transport=transport, timeout=10, trust_env=False) as client:
        for _ in range(probes):
            started = time.monotonic()
            assert client.get(f"http://{host}:{port}/api/v1/status").status_code == 200
            times.append(time.monotonic() - started)
    cut = 0
    for s in held:
        s.settimeout(TIMEOUT_S + 10)
        try:
            data = s.recv(1024)
            cut += data == b"" or data.startswith(b"HTTP/1.1 408")
        except ConnectionResetError:  # reset_timedout_connection
            cut += 1
        except socket.timeout:  # still held: the front did not cut it
            pass
        s.close()
    return times, cut


def test_a_slowloris_crowd_from_one_tablet_does_not_stop_the_others(lan, tmp_path):
    data = tmp_path / "data"
    picture = _library(data)
    (data / "settings.json").write_text(json.dumps({"request_timeout_s": TIMEOUT_S}))
    server = lan.serve_edge(data)
    times, cut = lan.clients.call(_hold_and_measure, APPLIANCE_IP, server.port, CLIENT_IPS[3], SLOW_CONNECTIONS, 50)
    times.sort()
    assert times[int(len(times) * 0.95) - 1] < 0.5, times  # p95 of the status while the crowd is held
    assert cut == SLOW_CONNECTIONS  # each held connection was closed by nginx's timeout
    r = lan.get(server.base + picture, CLIENT_IPS[5])
    assert r.status_code == 200 and r.headers["server"] == "nginx" and r.headers["content-type"].startswith("image/svg+xml")
