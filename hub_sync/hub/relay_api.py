"""The province's HTTP side of the county relay.

    POST /api/v1/province/roster   body: a ``device-roster`` DSSE envelope signed by a registered
                                   county's relay key; 200 {"added", "revoked", "refused": [lines]}
    POST /api/v1/province/relay    body: a ``relay-bundle`` DSSE envelope (county relay key);
                                   200: a ``relay-receipt`` DSSE envelope signed by this hub's
                                   relay key (header ``X-Relay-Already: 1`` when the bundle had
                                   been received before: the same receipt, nothing changed)
                                   403 unknown or revoked county, or not its key (refused whole),
                                   400 malformed, 409 a bundle number skipped or reused.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from hub_sync.formats.relay_bundle import RECEIPT_CONTENT_TYPE
from hub_sync.hub.relay_intake import RelayIntake
from hub_sync.hub.relay_keys import relay_signer

bp = Blueprint("province_relay", __name__)


def _intake() -> RelayIntake:
    hub = current_app.extensions["hub"]
    return RelayIntake(hub.db, relay_signer(hub.data_dir))


@bp.post("/api/v1/province/roster")
def roster():
    return jsonify(_intake().roster(request.get_data(cache=False)))


@bp.post("/api/v1/province/relay")
def relay():
    receipt, already = _intake().bundle(request.get_data(cache=False))
    return Response(receipt, status=200, content_type=RECEIPT_CONTENT_TYPE,
                    headers={"X-Relay-Already": "1"} if already else {})
