"""The Flask application factory for the appliance (and, with role=hub, the hub UI).

``create_app(config)`` takes an ``EdgeConfig``, a mapping of overrides (tests), or
nothing (defaults). Expected errors become JSON bodies with a clear message;
nothing a user sees is a traceback.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hub_sync.core.errors import Problem

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig

log = logging.getLogger(__name__)

# Other packages add (blueprint factory) callables here: fn(app) -> None
BLUEPRINT_HOOKS: list = []

_HTTP_MESSAGES = {
    400: ("请求有误", "bad request"),
    404: ("找不到该页面或文件", "not found"),
    405: ("不支持该操作", "method not allowed"),
    413: ("上传的文件太大", "upload too large"),
    416: ("请求的范围超出文件大小", "requested range not satisfiable"),
}


def create_app(config: EdgeConfig | Mapping[str, Any] | None = None, appliance: Appliance | None = None) -> Flask:
    """Build the appliance's WSGI app."""
    if config is None:
        config = EdgeConfig.load()
    elif not isinstance(config, EdgeConfig):
        config = EdgeConfig.load(overrides=config)
    appliance = appliance or Appliance.open(config)

    app = Flask(__name__)
    # never redirect "//etc/passwd" or "%2F" paths anywhere: odd paths get a plain 404
    app.url_map.merge_slashes = False
    app.config["SECRET_KEY"] = config.secret_key or appliance.identity("secret_key")
    app.config["MAX_CONTENT_LENGTH"] = config.max_upload_mb * 1024 * 1024
    app.config["JSON_AS_ASCII"] = False
    app.json.ensure_ascii = False
    app.extensions["appliance"] = appliance
    app.extensions["edge_config"] = config

    from edge_agent.library.content_api import bp as content_bp

    app.register_blueprint(content_bp)
    from edge_agent.spaces import register as register_spaces  # learning spaces API (issue #5)

    register_spaces(app)
    from edge_agent.pages import register as register_pages  # classroom pages (issue #6)

    register_pages(app)
    for hook in BLUEPRINT_HOOKS:
        hook(app)

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
