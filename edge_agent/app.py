"""The Flask application factory for the appliance.

``create_app(config)`` takes an ``EdgeConfig``, a mapping of overrides (tests), or
nothing (defaults), and registers the appliance's own areas: the library's
content API, the learning spaces' API and the classroom pages. Areas of the
packages above (the technician's USB endpoints of ``provisioning``) are handed
in as ``blueprints`` by ``edge_agent.wiring``, the one place that assembles a
served appliance. Expected errors become JSON bodies with a clear message;
nothing a user sees is a traceback.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import HTTPException

from hub_sync.core.errors import Problem

from edge_agent import pages, spaces
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import MIB
from edge_agent.library import content_api
from edge_agent.sync import api as sync_api
from edge_agent.sync import interaction_api as live_interaction_api

log = logging.getLogger(__name__)

_HTTP_MESSAGES = {
    400: ("请求有误", "bad request"),
    404: ("找不到该页面或文件", "not found"),
    405: ("不支持该操作", "method not allowed"),
    413: ("上传的文件太大", "upload too large"),
    416: ("请求的范围超出文件大小", "requested range not satisfiable"),
}


def create_app(config: EdgeConfig | Mapping[str, Any] | None = None, appliance: Appliance | None = None,
               blueprints: Iterable[Blueprint] = ()) -> Flask:
    """Build the appliance's WSGI app; ``blueprints`` are extra areas to serve."""
    if config is None:
        config = EdgeConfig.load()
    elif not isinstance(config, EdgeConfig):
        config = EdgeConfig.load(overrides=config)
    appliance = appliance or Appliance.open(config)

    app = Flask(__name__)
    # never redirect "//etc/passwd" or "%2F" paths anywhere: odd paths get a plain 404
    app.url_map.merge_slashes = False
    app.config["SECRET_KEY"] = config.secret_key or appliance.identity("secret_key")
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_mb * MIB
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.extensions["appliance"] = appliance
    app.extensions["edge_config"] = config

    app.register_blueprint(content_api.bp)  # catalogue, content files, status
    spaces.register(app)  # learning spaces' JSON API
    app.register_blueprint(sync_api.bp)  # sync now, its progress, channel choice
    app.register_blueprint(live_interaction_api.bp)  # live lessons: timetable now/next, pupils' hands and questions
    pages.register(app)  # classroom pages
    for bp in blueprints:
        app.register_blueprint(bp)

    @app.errorhandler(Problem)
    def problem(exc: Problem):
        if exc.http_status >= 500:
            log.warning("%s", exc)
        return jsonify(exc.to_json()), exc.http_status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        zh, en = _HTTP_MESSAGES.get(exc.code or 500, (exc.name, exc.name))
        rv = jsonify({"error": {"code": (exc.name or "error").lower().replace(" ", "_"), "message": zh, "message_en": en}})
        rv.status_code = exc.code or 500
        for key, value in exc.get_headers():
            if key.lower() not in ("content-type", "content-length"):
                rv.headers[key] = value
        return rv

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error")
        return jsonify({"error": {"code": "internal", "message": "设备内部出错，已记录日志。请重试或联系技术员",
                                  "message_en": "internal error, logged; try again or ask the technician"}}), 500

    return app
