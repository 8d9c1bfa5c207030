"""The hub's Flask application factory.

``create_hub_app(hub)`` registers every blueprint the hub serves, here and only
here, so every way of starting the hub (``hub serve``, the gunicorn entry in
``hub_sync.hub.wsgi``, tests) serves every route. Problems become JSON bodies.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hub_sync.core.const import MIB
from hub_sync.core.errors import Problem
from hub_sync.hub import console, fleet_api, interaction_api, live_api, offer_api, relay_api, repo_api, usage_api
from hub_sync.hub.hub import Hub

log = logging.getLogger(__name__)

# Largest request body the hub reads (a usage batch or an enrollment request).
MAX_REQUEST_MB = 64


def create_hub_app(hub: Hub) -> Flask:
    """Build the hub's WSGI app around an opened ``Hub``."""
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_MB * MIB
    app.extensions["hub"] = hub

    @app.get("/api/v1/hub/status")
    def status():
        return jsonify(hub.status())

    app.register_blueprint(interaction_api.bp)  # live lessons: pupils' messages, poll state, teacher page
    app.register_blueprint(usage_api.bp)  # POST /api/v1/hub/usage, /api/v1/hub/downlink
    app.register_blueprint(offer_api.bp)  # the files of teachers' offered uploads, signed by the device
    app.register_blueprint(repo_api.bp)  # /tuf/, /content/, enrollment, channels
    app.register_blueprint(live_api.bp)  # /live/ and the publisher's POST (专递课堂)
    app.register_blueprint(fleet_api.bp)  # POST /api/v1/hub/device-report
    app.register_blueprint(relay_api.bp)  # at a province: POST /api/v1/province/roster, /relay (county relay)

    console.init_app(app)  # /console/: the county bureau's pages (hub_sync.hub.console registers its areas)

    @app.errorhandler(Problem)
    def problem(exc: Problem):
        log.warning("refused: %s", exc)
        retry = getattr(exc, "retry_after_s", None)
        return jsonify(exc.to_json()), exc.http_status, ({"Retry-After": str(retry)} if retry else {})

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify({"error": {"code": "http_%d" % (exc.code or 500), "message": exc.name, "message_en": exc.name}}), exc.code or 500

    return app
