"""The hub's Flask application factory.

Feature modules add blueprints by appending ``fn(app)`` to ``HUB_BLUEPRINTS``
(imported here so registration order is fixed). Problems become JSON bodies.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hub_sync.core.errors import Problem
from hub_sync.hub.hub import Hub

log = logging.getLogger(__name__)

HUB_BLUEPRINTS: list = []


def create_hub_app(hub: Hub) -> Flask:
    """Build the hub's WSGI app around an opened ``Hub``."""
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024
    app.extensions["hub"] = hub

    @app.get("/api/v1/hub/status")
    def status():
        return jsonify(hub.status())

    from hub_sync.hub import usage_api  # noqa: F401  (registers POST /api/v1/hub/usage; imported here: it imports this module)

    for register in HUB_BLUEPRINTS:
        register(app)

    @app.errorhandler(Problem)
    def problem(exc: Problem):
        log.warning("refused: %s", exc)
        return jsonify(exc.to_json()), exc.http_status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify({"error": {"code": "http_%d" % (exc.code or 500), "message": exc.name, "message_en": exc.name}}), exc.code or 500

    return app
