"""The hub's HTTP side of live lessons (专递课堂): the publisher posts, appliances pull.

    POST /api/v1/hub/live/<L>/update   multipart: ``manifest`` (signed) + one part per file, named by its path
    GET  /live/index.json              {"lessons": [{"lesson", "seq", "ended"}]}: a hint, records are signed
    GET  /live/<L>/lesson.json         the hub-signed lesson record
    GET  /live/<L>/head.json           {"seq": n, "ended": bool}
    GET  /live/<L>/m/<n>.json          signed manifest n
    GET  /live/<L>/<rung>/<i>.ts       a segment; /live/<L>/slides/<name> a slide

Every byte an appliance takes from here is checked against a signature before it is used, so
these GETs need no authentication; the POST is authenticated by the manifest's signature.
"""

from __future__ import annotations

import re

from flask import Blueprint, current_app, jsonify, request, send_file

from hub_sync.core.errors import FormatError
from hub_sync.hub.hub import Hub
from hub_sync.hub.live_relay import LiveNotFoundError, LiveRelay

bp = Blueprint("hub_live", __name__)
_FILE = re.compile(r"^(lesson\.json|head\.json|m/[0-9]{1,6}\.json|[a-z][a-z0-9]{0,15}/[0-9]{5}\.ts|slides/[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$")
MIME = {".json": "application/json", ".ts": "video/mp2t", ".png": "image/png", ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg", ".webp": "image/webp"}


def relay() -> LiveRelay:
    hub: Hub = current_app.extensions["hub"]
    return LiveRelay(hub.data_dir, hub.online_signer)


@bp.post("/api/v1/hub/live/<lesson>/update")
def update(lesson: str):
    manifest = request.files.get("manifest")
    if manifest is None:
        raise FormatError("缺少签名清单", "the update has no signed manifest")
    files = {name: f.stream for name, f in request.files.items() if name != "manifest"}
    accepted = relay().accept(lesson, manifest.read(), files)
    return jsonify({"lesson": lesson, "seq": accepted.seq, "files": len(accepted.files), "ended": accepted.ended})


@bp.get("/live/index.json")
def index():
    return jsonify({"lessons": relay().lessons()})


@bp.get("/live/<lesson>/<path:name>")
def live_file(lesson: str, name: str):
    if not _FILE.match(name):
        raise LiveNotFoundError("没有这个文件", f"no such file: {name}")
    path = relay().path(lesson, name)
    if not path.is_file():
        raise LiveNotFoundError("没有这节直播课或文件", f"no such live lesson or file: {lesson}/{name}")
    response = send_file(path, mimetype=MIME.get(path.suffix, "application/octet-stream"), conditional=True)
    response.headers["Cache-Control"] = "no-cache" if name == "head.json" else "public, max-age=3600"
    return response
