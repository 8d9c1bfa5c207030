"""A WSGI entry for running the hub under gunicorn (tests and production process managers).

    HUB_DATA=/srv/hub gunicorn 'hub_sync.hub.wsgi:app_from_env()'
"""

from __future__ import annotations

import os

from flask import Flask

from hub_sync.hub.app import create_hub_app
from hub_sync.hub.hub import Hub
from hub_sync.hub.publisher import link_published_files


def app_from_env() -> Flask:
    """The hub app for the data folder named by ``HUB_DATA``; the published files
    are brought up to date first, as ``hub serve`` does."""
    hub = Hub.open(os.environ["HUB_DATA"])
    link_published_files(hub)
    return create_hub_app(hub)
