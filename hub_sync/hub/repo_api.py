"""The hub's HTTP side of "down": TUF metadata, content by hash (with Range, the
fallback transport), the channel list, enrollment and channel choices.

    GET  /tuf/metadata/<name>.json     TUF metadata (timestamp re-signed when due), hash bins included
    GET  /tuf/targets/<dir>/<sha>.<n>  a target, by the hash prefix ngclient uses
    GET  /content/<sha256>             a stored file, Range-capable
    GET  /api/v1/hub/channels          channels: id, title, mandatory, published version
    POST /api/v1/hub/enroll            DSSE enrollment request -> registered device
    POST /api/v1/hub/subscriptions     DSSE subscription request from an enrolled device

Metadata and JSON answers go out gzip'ed when the client accepts it (``_compress``);
TUF's lengths and hashes are those of the uncompressed files, which the client
checks after decoding. Files by hash are sent as they are (Range needs the bytes).
"""

from __future__ import annotations

import gzip
import json
import logging
import re

from flask import Blueprint, Response, abort, current_app, jsonify, request

from hub_sync.core.errors import DeviceError, FormatError
from hub_sync.formats.enrollment import SUBSCRIPTION_KIND, peek_device, read_enrollment, token_hash
from hub_sync.formats.envelope import open_envelope
from hub_sync.hub.channels import Channels
from hub_sync.hub.hub import Hub
from hub_sync.hub.publisher import publish, published_file, refresh_timestamp, repo_for
from hub_sync.hub.registry import Registry

log = logging.getLogger(__name__)
bp = Blueprint("hub_repo", __name__)
_METADATA_NAME = re.compile(r"^(\d+\.)?[a-z0-9][a-z0-9-]{0,62}(\.bin-[0-9a-f]{1,8})?\.json$")
GZIP_MIN_BYTES = 256  # below this gzip's header costs more than it saves
GZIP_LEVEL = 6


def _hub() -> Hub:
    return current_app.extensions["hub"]


@bp.after_request
def _compress(response: Response) -> Response:
    """gzip a JSON answer (TUF metadata included) for a client that accepts it."""
    if (response.status_code != 200 or response.direct_passthrough or response.mimetype != "application/json"
            or "Content-Encoding" in response.headers or "gzip" not in request.accept_encodings):
        return response
    response.vary.add("Accept-Encoding")
    data = response.get_data()
    if len(data) >= GZIP_MIN_BYTES:
        response.set_data(gzip.compress(data, GZIP_LEVEL, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
    return response


@bp.get("/tuf/metadata/<name>")
def metadata(name: str):
    if not _METADATA_NAME.match(name):
        abort(404)
    hub = _hub()
    repo = repo_for(hub)
    if name == "timestamp.json":
        refresh_timestamp(hub)
    try:
        data = (repo.metadata_dir / name).read_bytes()
    except FileNotFoundError:
        abort(404)
    return Response(data, mimetype="application/json", headers={"Cache-Control": "no-cache"})


@bp.get("/tuf/targets/<path:target>")
def target(target: str):
    # consistent snapshots: the last part is "<sha256>.<name>"; files are served by hash
    sha = target.rsplit("/", 1)[-1].split(".", 1)[0]
    return _blob(sha)


@bp.get("/content/<sha>")
def content(sha: str):
    return _blob(sha)


def _blob(sha: str):
    path = published_file(_hub(), sha)  # published files only: nothing waiting for review, nothing withdrawn
    if path is None:
        abort(404)
    size = path.stat().st_size
    start, end, status = 0, size, 200
    rng = request.range
    if rng is not None:
        span = rng.range_for_length(size)
        if span is None:
            return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
        start, end, status = span[0], span[1], 206
    rv = Response(_read(path, start, end), status=status, mimetype="application/octet-stream", direct_passthrough=True)
    rv.content_length = end - start
    rv.headers["Accept-Ranges"] = "bytes"
    rv.set_etag(sha)
    rv.cache_control.max_age = 365 * 24 * 3600
    if status == 206:
        rv.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return rv


def _read(path, start: int, end: int):
    # a generator owns the file: closed when the response ends, is abandoned by a
    # client that hung up, or is garbage-collected
    with path.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(left, 256 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@bp.get("/api/v1/hub/channels")
def channels():
    hub = _hub()
    chans = Channels(hub.db)
    state = repo_for(hub).state()
    versions = {**state.channel_versions, **state.mirrored_versions}  # a mirrored channel: the province's version
    return jsonify({"channels": [{"id": c.id, "title": c.title, "mandatory": c.mandatory,
                                  "version": versions.get(c.id, 0)} for c in chans.all()]})


def enroll(hub: Hub, data: bytes) -> dict:
    """Register the device of a verified enrollment request whose bundle token is
    unspent and unexpired (``Registry.enroll``), and publish its school's index."""
    req = read_enrollment(data)
    try:
        device = Registry(hub.db).enroll(req, token_hash(str(req.get("token", ""))))
    except DeviceError as exc:
        log.warning("enrollment of device %s for school %s refused: %s", req["device_id"], req["school_code"], exc.en)
        raise
    # the school's index exists since ``provision make``: this signs nothing unless something changed
    publish(hub, changed=set())
    log.info("enrolled device %s of school %s", device.device_id, device.school_code)
    return {"device_id": device.device_id, "school_code": device.school_code}


@bp.post("/api/v1/hub/enroll")
def enroll_route():
    return jsonify(enroll(_hub(), request.get_data()))


@bp.post("/api/v1/hub/subscriptions")
def subscriptions():
    hub = _hub()
    data = request.get_data()
    registry = Registry(hub.db)
    device = registry.active(peek_device(data))
    payload, _ = open_envelope(data, SUBSCRIPTION_KIND, [device.public_key])
    req = json.loads(payload)
    if req.get("school_code") != device.school_code:
        raise DeviceError("设备不属于该学校", "device does not belong to that school")
    chans = Channels(hub.db)
    channel = chans.get(str(req.get("channel", "")))
    if channel.mandatory and not req.get("subscribe"):
        raise FormatError(f"{channel.id} 是必选频道，不能退订", f"{channel.id} is mandatory and cannot be left")
    chans.subscribe(device.school_code, channel.id, bool(req.get("subscribe")))
    registry.touch(device.device_id)
    state = publish(hub, changed=set())
    return jsonify({"school_code": device.school_code, "channels": [c.id for c in chans.channels_for(device.school_code)],
                    "snapshot_version": state.snapshot_version})

