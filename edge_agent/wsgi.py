"""A WSGI entry for running the appliance's routes under gunicorn directly.

    SCHOOL_EDGE_DATA=/srv/school-edge gunicorn 'edge_agent.wsgi:app_from_env()'

It serves every route that ``school-edge edge serve`` serves (``edge_agent.wiring``);
background jobs (scheduled sync, the stick watcher) and the LAN announcement run
only under ``edge serve``, which is how an appliance is meant to run.
"""

from __future__ import annotations

import os

from flask import Flask

from edge_agent.config import EdgeConfig
from edge_agent.wiring import create_served_app

DATA_ENV = "SCHOOL_EDGE_DATA"


def app_from_env() -> Flask:
    """The appliance app for the data folder named by ``SCHOOL_EDGE_DATA`` (default: the demo's folder)."""
    return create_served_app(EdgeConfig.load(os.environ.get(DATA_ENV)))
