"""The served appliance, assembled: the one place that says which routes and
background jobs it has.

The app factory (``edge_agent.app.create_app``) registers the appliance's own
areas; the areas of the packages above it (the technician's USB endpoints in
``provisioning``) and the background jobs are added here, explicitly, for every
way of starting a served appliance: ``school-edge edge serve``, ``school-edge
demo`` and the gunicorn entry ``edge_agent.wsgi``.
"""

from __future__ import annotations

from typing import Any, Mapping

from flask import Blueprint, Flask

from edge_agent.app import create_app
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.library.integrity import start_scrubber
from edge_agent.live import lan_api as live_lan_api
from edge_agent.live.job import start_live_puller
from edge_agent.live.store import LiveStore
from edge_agent.runner import Job, run_appliance
from edge_agent.sync.live_link import start_live_link
from edge_agent.sync.scheduler import start_scheduler
from provisioning import usb_api
from provisioning.watcher import start_watcher

__all__ = ["blueprints", "jobs", "create_served_app", "serve_appliance"]


def blueprints() -> list[Blueprint]:
    """Areas served besides the appliance's own: the technician's USB endpoints."""
    return [usb_api.bp, live_lan_api.bp]


def jobs() -> list[Job]:
    """Background jobs of a served appliance: scheduled sync, the USB stick watcher,
    the slow re-hashing of stored files (quarantining damaged ones), the live lessons'
    fast path and puller."""
    return [start_scheduler, start_watcher, start_scrubber, live_link, start_live_puller]


def live_link(appliance: Appliance):
    """The live lessons' fast path (pupils' messages up, the open poll down); a lesson the
    timetable says was missed is handed to the media pipeline's puller, which fetches its recording."""
    return start_live_link(appliance, prefetch=LiveStore(appliance.data_dir).want)


def create_served_app(config: EdgeConfig | Mapping[str, Any] | None = None,
                      appliance: Appliance | None = None) -> Flask:
    """The WSGI app with every route a served appliance has."""
    return create_app(config, appliance=appliance, blueprints=blueprints())


def serve_appliance(appliance: Appliance, **options: Any) -> None:
    """Serve ``appliance`` with every route and background job until SIGTERM/Ctrl-C
    (``options`` go to ``run_appliance``: stops, banner, extra_lines)."""
    run_appliance(appliance, blueprints=blueprints(), jobs=jobs(), **options)
