"""The console's static assets: the classroom pages' own CSS and icon, plus
``county.css``, served by the hub itself (no CDN) with a content hash in the URL."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app

from classroom_ui.catalogues import TEMPLATES_DIR, UI_DIR
from classroom_ui.hashed_assets import asset_versions, send_asset

STATIC_DIR = UI_DIR / "static"
SERVED = ("app.css", "county.css", "favicon.svg")  # the console needs no script to work

bp = Blueprint("console_assets", __name__, template_folder=str(TEMPLATES_DIR))  # county/*.html


def asset_url(name: str) -> str:
    versions = current_app.extensions["console_assets"]
    if name not in versions:
        raise KeyError(f"no console asset {name}")
    return f"/console/assets/{name}?v={versions[name]}"


def init_app(app: Flask) -> None:
    app.extensions["console_assets"] = asset_versions(STATIC_DIR, SERVED)
    app.jinja_env.globals["asset_url"] = asset_url


@bp.get("/console/assets/<name>")
def asset(name: str):
    return send_asset(STATIC_DIR, name, current_app.extensions["console_assets"])
