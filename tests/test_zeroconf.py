"""Zeroconf on loopback: the serving appliance announces itself with its TXT
records, withdraws on shutdown, and ``school-edge edge discover`` lists it."""

import json
import subprocess
import sys

import httpx
import pytest
from fixtures.common import REPO, SCHOOL

from edge_agent.const import SERVICE_TYPE
from edge_agent.lan_announce import Announcer, discover

pytestmark = pytest.mark.slow  # browsing waits out mDNS windows: 5-16 s per test

BROWSE_S = 1.5


def announcing(tmp_path, serve_edge, school_code=SCHOOL):
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"announce_interfaces": "127.0.0.1"}))
    subprocess.run([sys.executable, "-c", f"""
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
a = Appliance.open(EdgeConfig.load({str(data)!r}))
a.set_identity(school_code={school_code!r})
a.close()"""], cwd=REPO, check=True, timeout=60)
    server = serve_edge(data, announce=True)
    status = httpx.get(server.base + "/api/v1/status", timeout=10).json()
    return server, status


def mine(found, device_id):
    return [a for a in found if a.device_id == device_id]


def browse_until(device_id, present, tries=5):
    """Browse repeatedly: multicast answers on a loaded machine can miss one window."""
    for _ in range(tries):
        found = mine(discover(BROWSE_S, "127.0.0.1"), device_id)
        if bool(found) == present:
            return found
    return found


def test_serving_appliance_is_found_with_its_txt_records_and_gone_after_sigterm(tmp_path, serve_edge):
    server, status = announcing(tmp_path, serve_edge)
    [found] = browse_until(status["device_id"], present=True)
    assert found.school_code == SCHOOL
    assert found.api == "1" and found.role == "edge"
    assert found.port == server.port and "127.0.0.1" in found.addresses
    assert found.url == server.base + "/"
    assert found.name.endswith("." + SERVICE_TYPE)
    assert httpx.get(found.url + "api/v1/status", timeout=10).json()["device_id"] == status["device_id"]

    assert server.stop() == 0
    assert "已停止" in server.output()
    assert browse_until(status["device_id"], present=False) == []


def test_discover_command_prints_the_appliance(tmp_path, serve_edge):
    server, status = announcing(tmp_path, serve_edge, school_code="4100000001")
    for _ in range(5):  # as browse_until: on a loaded machine one browse window can miss the answers
        result = subprocess.run([sys.executable, "-m", "edge_agent.cli", "edge", "discover", "--interfaces",
                                 "127.0.0.1", "--seconds", str(BROWSE_S)], cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr
        lines = [line for line in result.stdout.splitlines() if status["device_id"] in line]
        if lines:
            break
    [line] = lines
    assert line.split() == ["edge", "4100000001", status["device_id"], server.base + "/"]


def test_announcer_on_loopback_withdraws_on_close():
    announcer = Announcer("127.0.0.1", 9, "4199999999", "edge-test-close", interfaces="127.0.0.1")
    try:
        assert [a.school_code for a in browse_until("edge-test-close", present=True)] == ["4199999999"]
    finally:
        announcer.close()
    assert browse_until("edge-test-close", present=False) == []

