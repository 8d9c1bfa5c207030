"""Static assets of the pages, served by the appliance itself (no CDN, ever).

URLs carry a short content hash (``/assets/app.css?v=1a2b3c4d``) so a browser may
keep them a year and still picks up a new version at once. The service worker is
served from the site root because its scope is the folder it is served from.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, send_from_directory

from classroom_ui.hashed_assets import asset_versions, send_asset

from edge_agent.const import IMMUTABLE_MAX_AGE_S
from edge_agent.pages.i18n import UI_DIR

STATIC_DIR = UI_DIR / "static"
ASSET_MAX_AGE_S = IMMUTABLE_MAX_AGE_S  # an asset's URL carries its hash: it never changes

bp = Blueprint("assets", __name__, template_folder=str(UI_DIR / "templates"))


def asset_url(name: str) -> str:
    versions = current_app.extensions["asset_versions"]
    if name not in versions:
        raise KeyError(f"no static asset {name}")
    return f"/assets/{name}?v={versions[name]}"


def init_app(app: Flask) -> None:
    app.extensions["asset_versions"] = asset_versions(STATIC_DIR)
    app.jinja_env.globals["asset_url"] = asset_url
    app.register_blueprint(bp)


@bp.get("/assets/<path:name>")
def asset(name: str):
    return send_asset(STATIC_DIR, name, current_app.extensions["asset_versions"], ASSET_MAX_AGE_S)


@bp.get("/sw.js")
def service_worker():
    rv = send_from_directory(STATIC_DIR, "sw.js", max_age=0)
    rv.cache_control.no_cache = True
    rv.headers["Service-Worker-Allowed"] = "/"
    return rv
