"""The technician's page without a browser: who may open it, an unprovisioned device, sync progress lines."""

import pytest

from fixtures.browser import prepare_school
from fixtures.common import PASSWORD
from edge_agent.sync.sync_runner import progress_fraction
from edge_agent.pages.technician import link_state


@pytest.fixture
def technician(client, appliance):
    from edge_agent.demo.run import load_sample_library

    load_sample_library(appliance)
    prepare_school(appliance)
    r = client.post("/api/v1/login/staff", json={"number": "T0099", "password": PASSWORD}, headers={"X-Requested-With": "t"})
    client.csrf = r.json["csrf_token"]
    return client


def test_unprovisioned_device_cannot_sync_and_says_how_to_fix_it(technician, appliance):
    page = technician.get("/technician").text
    assert 'id="sync-now"' in page and "disabled" in page.split('id="sync-now"')[1].split(">")[0]
    assert "未配置县平台" in page and "配置U盘" in page
    r = technician.post("/api/v1/sync", headers={"X-CSRF-Token": technician.csrf})
    assert r.status_code == 409 and "U盘" in r.json["error"]["message"]
    assert technician.get("/api/v1/sync/progress").json["state"] == "idle"


def test_sync_cannot_be_started_without_the_csrf_token(technician):
    assert technician.post("/api/v1/sync").status_code == 403


def test_progress_lines_become_a_growing_fraction():
    state: dict = {}
    assert progress_fraction("下载 fetching 4 files, 1000 bytes", state) == pytest.approx(0.2)
    assert progress_fraction("rsync 50%", state) == pytest.approx(0.55)
    assert progress_fraction("rsync 100%", state) == pytest.approx(0.9)
    state = {}
    progress_fraction("下载 fetching 2 files, 10 bytes", state)
    assert progress_fraction("http abcdef…", state) == pytest.approx(0.55)
    assert progress_fraction("http 123456…", state) == pytest.approx(0.9)


def test_link_state_comes_from_the_sync_status():
    assert link_state({"hub_url": "-"}) == "unset"
    assert link_state({"hub_url": "http://hub", "last_sync_error": "-"}) == "ok"
    assert link_state({"hub_url": "http://hub", "last_sync_error": "2026 link down"}) == "failing"


def test_channels_need_a_provisioned_device_and_a_device_account(technician, appliance):
    from edge_agent.app import create_app

    r = technician.get("/api/v1/channels")
    assert r.status_code == 409 and "U盘" in r.json["error"]["message"]
    stranger = create_app(appliance.config, appliance=appliance).test_client()  # from another machine, no login
    r = stranger.post("/api/v1/channels/math-1", json={"on": True}, headers={"X-Requested-With": "t"},
                      environ_base={"REMOTE_ADDR": "10.250.0.9"})
    # an unprovisioned device has no accounts to log in with: only its own screen may manage it
    assert r.status_code == 403 and "本机" in r.json["error"]["message"]
    page = stranger.get("/technician", environ_base={"REMOTE_ADDR": "10.250.0.9"})
    assert page.status_code == 403 and "本机" in page.get_data(as_text=True)
