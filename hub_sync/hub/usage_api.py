"""The hub's HTTP side of "up": usage batches in, signed acknowledgements out.

    POST /api/v1/hub/usage   body: a ``usage-batch`` DSSE envelope
                             (Content-Type application/vnd.school-edge.usage-batch+json)
                             200: a ``usage-ack`` DSSE envelope signed by the online key
                             400 malformed, 403 bad signature / unknown or revoked device,
                             409 broken hash chain; each changes nothing.
                             ``?downlink_after=N``: the last downlink message the device
                             applied; the acknowledgement then carries the messages after it.
    POST /api/v1/hub/downlink  body: a ``downlink-poll`` DSSE envelope signed by the device
                             key, payload ``{"device": ID, "after": N}``; only a registered,
                             active device may ask (403 otherwise), so nobody else learns
                             whether messages wait for a school. ``after`` acknowledges
                             the messages up to it (``Downlink.acknowledge``).
                             204 (empty) when no message waits for the device,
                             200: a ``downlink`` DSSE envelope (``downlink.Downlink.answer``),
                             every payload sealed to the device's key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time

from flask import Blueprint, Response, current_app, request

from hub_sync.core.errors import FormatError
from hub_sync.formats.downlink import DOWNLINK_CONTENT_TYPE, DOWNLINK_KIND, POLL_KIND
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_ack import ACK_CONTENT_TYPE, seal_ack
from hub_sync.hub import relay_outbox
from hub_sync.hub.downlink import Downlink, answer_bytes, hub_box_opener
from hub_sync.hub.ingest import StoredBatch, UsageIngest, open_device_envelope
from hub_sync.hub.offers import Offers
from hub_sync.hub.partitions import month_of
from hub_sync.hub.registry import Registry

log = logging.getLogger(__name__)
bp = Blueprint("hub_usage", __name__)


def _signer():
    """The online key, read once per process and again only when the file changes (``hub rotate-key``)."""
    hub = current_app.extensions["hub"]
    stat = (hub.data_dir / "keys" / "online.pem").stat()
    stamp = (stat.st_ino, stat.st_mtime_ns)
    cached = current_app.extensions.get("hub_online_signer")
    if cached is None or cached[0] != stamp:
        cached = current_app.extensions["hub_online_signer"] = (stamp, hub.online_signer)
    return cached[1]


def _after(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        raise FormatError(f"参数 {name} 应为整数", f"{name} must be an integer") from None


@bp.post("/api/v1/hub/usage")
def usage():
    hub = current_app.extensions["hub"]
    after = _after("downlink_after")
    envelope = request.get_data(cache=False)
    ingest = UsageIngest(hub.db)
    ingest.ensure_month(month_of(time.time()))  # a new month's partition in its own short transaction, as ingest wants
    downlink, offers = Downlink(hub.db), Offers(hub.db)
    passed: list[bool] = []

    def with_events(stored: StoredBatch) -> None:
        # in the batch's transaction (one commit for all), so kept exactly when its events are: the
        # envelope for the province relay (relay_outbox), the device heard from, and the readers'
        # cursors moved past events that ask nothing of them
        relay_outbox.keep(hub.db, stored.ack.device_id, envelope)
        Registry(hub.db).touch(stored.device)
        span = (stored.ack.device_id, stored.batch.strings, stored.before, stored.ack.acked_seq)
        passed.extend([downlink.pass_over(*span), offers.pass_over(*span)])

    stored = ingest.store(envelope, with_events=with_events)
    device, ack = stored.device, stored.ack
    if not stored.ack.stored:  # a replay or a gap: still a verified request from the device
        Registry(hub.db).touch(device)
    if not (passed and all(passed)):
        # new events to read, or older ones not yet read (a hub killed after storing them, a replay
        # of a batch whose events were not read yet, an earlier version's hub): read now
        downlink.scan(device, hub_box_opener(hub))
        offers.collect(device.device_id, device.school_code)  # teachers' offers, for the review queue
    if after is not None:  # not an acknowledgement: the query string is not signed (the journal's downlink events are)
        answer = downlink.answer(device, after)
        if answer is not None:
            ack = dataclasses.replace(ack, downlink=answer)
    return Response(seal_ack(ack, _signer()), status=200, content_type=ACK_CONTENT_TYPE)


@bp.post("/api/v1/hub/downlink")
def downlink_poll():
    hub = current_app.extensions["hub"]
    envelope = request.get_data(cache=False)
    registry = Registry(hub.db)
    device, payload = open_device_envelope(registry, envelope, POLL_KIND, "消息请求", "downlink poll")
    try:
        after = max(0, int(json.loads(payload)["after"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError("消息请求格式无效", f"malformed downlink poll: {exc}") from exc
    registry.touch(device)
    downlink = Downlink(hub.db)
    downlink.acknowledge(device, after)  # signed: the device has applied everything up to ``after``
    answer = downlink.answer(device, after)
    if answer is None:  # the idle case: nothing waits, nothing is sent
        return Response(status=204)
    return Response(seal(DOWNLINK_KIND, answer_bytes(answer), _signer()), status=200, content_type=DOWNLINK_CONTENT_TYPE)

