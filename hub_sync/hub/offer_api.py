"""The hub's side of offered uploads' files (format: ``hub_sync.formats.offer_upload``).

Only an active device may send, only the files of its own pending offers, each
checked against its SHA-256 as it is stored (``BlobStore.put_stream``) and at most
``OFFER_MAX_MB``. A file already held is not wanted again.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re

from flask import Blueprint, current_app, jsonify, request

from hub_sync.core.blobstore import is_sha256
from hub_sync.core.const import MIB
from hub_sync.core.errors import CorruptBlobError, DeviceError, FormatError
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.offer_upload import CLAIM_HEADER, CLAIM_KIND, FILES_PATH, WANTED_PATH, read_claim
from hub_sync.hub.ingest import peek_payload
from hub_sync.hub.offer_parts import OfferParts
from hub_sync.hub.offers import Offers
from hub_sync.hub.registry import Registry

__all__ = ["bp", "OFFER_MAX_MB"]

OFFER_MAX_MB = 1024  # above the appliance's largest teacher upload (max_upload_mb, 200 by default)

log = logging.getLogger(__name__)
RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")

bp = Blueprint("hub_offers", __name__)


class OfferTooLargeError(FormatError):
    code = "too_large"
    http_status = 413


def _verified(envelope: bytes) -> tuple[str, list[str], object]:
    """(device, files, device row) of a claim signed by an active device's key."""
    device_id, _ = read_claim(peek_payload(envelope))  # whose it claims to be; verified next
    hub = current_app.extensions["hub"]
    registry = Registry(hub.db)
    device = registry.active(device_id)
    payload, _ = open_envelope(envelope, CLAIM_KIND, [device.public_key])
    device_id, files = read_claim(payload)
    registry.touch(device)
    return device_id, files, device


@bp.post(WANTED_PATH)
def wanted():
    """Which of the claimed files of the device's pending offers the hub still lacks."""
    hub = current_app.extensions["hub"]
    device_id, files, device = _verified(request.get_data(cache=False))
    offers = Offers(hub.db)
    offers.collect(device_id, device.school_code)  # the shared events may have come in this very sync
    own = offers.wanted_files(device_id)
    parts = OfferParts(hub.data_dir, hub.store)
    for f in files:  # a part that arrived whole but was not stored yet (the hub stopped in between)
        if f in own and own[f] and not hub.store.has(f) and parts.offset(device_id, f) >= own[f]:
            try:
                parts.finish(device_id, f)
            except CorruptBlobError:
                log.warning("offered file %s from %s failed its check; it is sent again", f[:12], device_id)
    wanted = [f for f in files if f in own and not hub.store.has(f)]
    return jsonify({"wanted": wanted, "offsets": {f: parts.offset(device_id, f) for f in wanted}})


@bp.put(FILES_PATH + "<sha256>")
def put_file(sha256: str):
    """Store one file of an offer, hash-checked."""
    hub = current_app.extensions["hub"]
    if not is_sha256(sha256):
        raise FormatError("文件编号无效", "the file name must be its sha256")
    try:
        envelope = base64.b64decode(request.headers.get(CLAIM_HEADER, ""), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"缺少或无效的 {CLAIM_HEADER}", f"missing or malformed {CLAIM_HEADER}") from None
    device_id, files, _device = _verified(envelope)
    if files != [sha256] or sha256 not in Offers(hub.db).wanted_files(device_id):
        raise DeviceError("这个文件不属于本设备待审核的提交，已拒收", "this file is not part of the device's pending offers; refused")
    request.max_content_length = OFFER_MAX_MB * MIB
    size = request.content_length
    if size is None:
        raise FormatError("需要 Content-Length", "Content-Length is required")
    if size > OFFER_MAX_MB * MIB:
        raise OfferTooLargeError(f"文件超过 {OFFER_MAX_MB} MB，县平台不接收", f"the file is larger than {OFFER_MAX_MB} MB; refused")
    if hub.store.has(sha256):
        return jsonify({"stored": sha256})
    span = request.headers.get("Content-Range")
    try:
        if span is None:  # the whole file in one go
            hub.store.put_stream(request.stream, expected_sha256=sha256, size_hint=size, max_bytes=size)
            return jsonify({"stored": sha256})
        start, end, total = _range(span, size)
        hub.store.check_space(total - start)
        parts = OfferParts(hub.data_dir, hub.store)
        held, _complete = parts.append(device_id, sha256, request.stream, start, end - start + 1)
        if held < total:  # the link dropped: the next upload resumes at ``held``
            return jsonify({"stored": None, "offset": held}), 202
        parts.finish(device_id, sha256)
    except CorruptBlobError as exc:
        raise FormatError(exc.zh, exc.en) from None
    return jsonify({"stored": sha256})


def _range(header: str, length: int) -> tuple[int, int, int]:
    """(start, end, total) of ``Content-Range: bytes START-END/TOTAL``, consistent with the body's length."""
    found = RANGE.fullmatch(header.strip())
    if not found:
        raise FormatError("Content-Range 格式无效", "malformed Content-Range (bytes START-END/TOTAL)")
    start, end, total = (int(g) for g in found.groups())
    if not start <= end < total or end - start + 1 != length:
        raise FormatError("Content-Range 与内容长度不符", "Content-Range does not match the body's length")
    if total > OFFER_MAX_MB * MIB:
        raise OfferTooLargeError(f"文件超过 {OFFER_MAX_MB} MB，县平台不接收", f"the file is larger than {OFFER_MAX_MB} MB; refused")
    return start, end, total
