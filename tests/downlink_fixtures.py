"""Helpers for the hub-to-school message tests: a county hub under a real gunicorn,
schools enrolled on it, and the ``school-edge hub`` commands through click."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port
from usage_fixtures import GunicornHub, enroll

from edge_agent.appliance import Appliance
from edge_agent.cli import main
from edge_agent.config import EdgeConfig
from hub_sync.hub import Hub

SCHOOL_A = "4401020301"
SCHOOL_B = "4401020302"


class County:
    """A hub data folder served by gunicorn, and the appliances enrolled on it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.hub = Hub.init(tmp / "hub", reserve_mb=1)
        self.server = GunicornHub(self.hub.data_dir, free_port()).start()
        self.url = self.server.url
        self.apps: list[Appliance] = []

    def school(self, code: str, name: str) -> Appliance:
        app = Appliance.open(EdgeConfig.load(self.tmp / name, {"free_space_reserve_mb": 1, "advertise": False}))
        enroll(app, self.hub, school_code=code)
        self.apps.append(app)
        return app

    def cli(self, verb: str, *args: str):
        """``school-edge hub VERB --data HUB ARGS`` in-process; returns click's result."""
        return CliRunner().invoke(main, ["hub", verb, "--data", str(self.hub.data_dir), *args], catch_exceptions=False)

    def queued(self) -> list[tuple]:
        return self.hub.db.execute("select school_code, seq, kind from downlink_messages order by school_code, seq").fetchall()

    def write_json(self, name: str, value) -> str:
        path = self.tmp / name
        path.write_text(json.dumps(value, ensure_ascii=False), "utf-8")
        return str(path)

    def close(self) -> None:
        self.server.kill(signal.SIGTERM)
        for app in self.apps:
            app.close()
        self.hub.close()


@pytest.fixture
def county(tmp_path):
    """A served hub with appliances on demand; a test module imports this fixture to use it."""
    c = County(tmp_path)
    yield c
    c.close()


def notices(app) -> list[tuple]:
    return app.db.execute("select subject, body from messages where kind = 'notice' order by id").fetchall()


def poll(hub_client, app) -> object:
    """Ask the hub (a Flask test client) for ``app``'s waiting messages the way the device does: signed."""
    from edge_agent.sync.downlink import poll_request
    from edge_agent.sync.usage_sync import DEVICE_KEY_FILE, DOWNLINK_PATH, POLL_CONTENT_TYPE
    from hub_sync.core.keys import load_signer

    body = poll_request(app.db, app.device_id, load_signer(app.data_dir / DEVICE_KEY_FILE))
    return hub_client.post(DOWNLINK_PATH, data=body, content_type=POLL_CONTENT_TYPE)
