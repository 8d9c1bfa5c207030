"""The console's static assets: the classroom pages' own CSS and icon, plus
``county.css``, served by the hub itself (no CDN) with a content hash in the URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, request, send_from_directory

from classroom_ui.catalogues import TEMPLATES_DIR, UI_DIR

STATIC_DIR = UI_DIR / "static"
SERVED = ("app.css", "county.css", "favicon.svg")  # the console needs no script to work
ASSET_MAX_AGE_S = 365 * 24 * 3600  # an asset's URL carries its hash: it never changes

bp = Blueprint("console_assets", __name__, template_folder=str(TEMPLATES_DIR))  # county/*.html


def asset_versions(folder: Path = STATIC_DIR) -> dict[str, str]:
    """name -> first 10 hex digits of its sha256, for the files the console serves."""
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:10] for name in SERVED}


def asset_url(name: str) -> str:
    versions = current_app.extensions["console_assets"]
    if name not in versions:
        raise KeyError(f"no console asset {name}")
    return f"/console/assets/{name}?v={versions[name]}"


def init_app(app: Flask) -> None:
    app.extensions["console_assets"] = asset_versions()
    app.jinja_env.globals["asset_url"] = asset_url


@bp.get("/console/assets/<name>")
def asset(name: str):
    versions = current_app.extensions["console_assets"]
    if name not in versions:
        abort(404)
    current = request.args.get("v") == versions[name]
    rv = send_from_directory(STATIC_DIR, name, max_age=ASSET_MAX_AGE_S if current else 0)
    if current:
        rv.cache_control.public = True
        rv.cache_control.immutable = True
    return rv
