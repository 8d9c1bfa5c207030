"""The hub's HTTP side of "up": usage batches in, signed acknowledgements out.

    POST /api/v1/hub/usage   body: a ``usage-batch`` DSSE envelope
                             (Content-Type application/vnd.school-edge.usage-batch+json)
                             200: a ``usage-ack`` DSSE envelope signed by the online key
                             400 malformed, 403 bad signature / unknown or revoked device,
                             409 broken hash chain; each changes nothing.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, current_app, request

from ..envelope import PAYLOAD_PREFIX
from .app import HUB_BLUEPRINTS
from .ingest import ACK_KIND, BATCH_KIND, UsageIngest, seal_ack

log = logging.getLogger(__name__)
bp = Blueprint("hub_usage", __name__)

BATCH_CONTENT_TYPE = PAYLOAD_PREFIX + BATCH_KIND + "+json"
ACK_CONTENT_TYPE = PAYLOAD_PREFIX + ACK_KIND + "+json"


@bp.post("/api/v1/hub/usage")
def usage():
    hub = current_app.extensions["hub"]
    ack = UsageIngest(hub.db).ingest(request.get_data(cache=False))
    signer = current_app.extensions.get("hub_online_signer")
    if signer is None:  # read the key once per process, not once per batch
        signer = current_app.extensions["hub_online_signer"] = hub.online_signer
    return Response(seal_ack(ack, signer), status=200, content_type=ACK_CONTENT_TYPE)


def register(app: Flask) -> None:
    app.register_blueprint(bp)


HUB_BLUEPRINTS.append(register)
