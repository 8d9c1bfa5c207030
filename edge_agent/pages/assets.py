"""Static assets of the pages, served by the appliance itself (no CDN, ever).

URLs carry a short content hash (``/assets/app.css?v=1a2b3c4d``) so a browser may
keep them a year and still picks up a new version at once. The service worker is
served from the site root because its scope is the folder it is served from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, request, send_from_directory

from edge_agent.const import IMMUTABLE_MAX_AGE_S
from edge_agent.pages.i18n import UI_DIR

STATIC_DIR = UI_DIR / "static"
ASSET_MAX_AGE_S = IMMUTABLE_MAX_AGE_S  # an asset's URL carries its hash: it never changes

bp = Blueprint("assets", __name__, template_folder=str(UI_DIR / "templates"))


def asset_versions(folder: Path = STATIC_DIR) -> dict[str, str]:
    """name -> first 10 hex digits of its sha256, for every static file."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:10]
            for p in sorted(folder.rglob("*")) if p.is_file()}


def asset_url(name: str) -> str:
    versions = current_app.extensions["asset_versions"]
    if name not in versions:
        raise KeyError(f"no static asset {name}")
    return f"/assets/{name}?v={versions[name]}"


def init_app(app: Flask) -> None:
    app.extensions["asset_versions"] = asset_versions()
    app.jinja_env.globals["asset_url"] = asset_url
    app.register_blueprint(bp)


@bp.get("/assets/<path:name>")
def asset(name: str):
    versions = current_app.extensions["asset_versions"]
    if name not in versions:
        abort(404)
    current = request.args.get("v") == versions[name]
    rv = send_from_directory(STATIC_DIR, name, max_age=ASSET_MAX_AGE_S if current else 0)
    if current:
        rv.cache_control.public = True
        rv.cache_control.immutable = True
    return rv


@bp.get("/sw.js")
def service_worker():
    rv = send_from_directory(STATIC_DIR, "sw.js", max_age=0)
    rv.cache_control.no_cache = True
    rv.headers["Service-Worker-Allowed"] = "/"
    return rv
