"""The fixtures every area uses: a temporary data folder, an opened appliance and its
test client, an empty county hub. The areas' fixtures live in ``tests/fixtures/``,
loaded here as plugins (see ``fixtures/__init__.py``); a test names a fixture as an
argument and never imports it. Every test is checked for leaked threads and
processes (``fixtures/leaks.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.wiring import create_served_app
from hub_sync.hub import Hub

pytest_plugins = [
    "pytester",
    "fixtures.leaks",
    "fixtures.servers",
    "fixtures.spaces",
    "fixtures.usb",
    "fixtures.sync",
    "fixtures.link",
    "fixtures.county",
    "fixtures.console",
    "fixtures.fleet",
    "fixtures.lrs",
    "fixtures.firmware_hub",
    "fixtures.firmware",
    "fixtures.browser",
    "fixtures.lan",
    "fixtures.live",
    "fixtures.avahi",
    "fixtures.parallel",
    "fixtures.postgres",
]


@pytest.fixture
def config(tmp_path: Path) -> EdgeConfig:
    """Settings of an appliance whose data folder is ``tmp_path/data`` (no free-space reserve, no announcement)."""
    return EdgeConfig.load(tmp_path / "data", {"free_space_reserve_mb": 1, "advertise": False})


@pytest.fixture
def appliance(config: EdgeConfig):
    """The appliance on that data folder, opened (migrations applied), closed afterwards."""
    app = Appliance.open(config)
    yield app
    app.close()


@pytest.fixture
def client(appliance: Appliance):
    """Flask's test client for the appliance's app with every area registered."""
    return create_served_app(appliance.config, appliance=appliance).test_client()


@pytest.fixture
def hub(tmp_path: Path, hub_db):
    """An empty county hub in ``tmp_path/hub`` (keys made, tables created), closed afterwards;
    on SQLite and again on PostgreSQL (``fixtures.postgres``)."""
    h = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
    yield h
    h.close()
