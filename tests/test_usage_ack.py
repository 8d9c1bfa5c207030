"""The usage acknowledgement has one definition (``hub_sync.formats.usage_ack``) that
the hub encodes and the appliance decodes: pure, round-trips, refuses anything malformed."""

from __future__ import annotations

import json

import pytest

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import generate_key
from hub_sync.formats.usage_ack import UsageAck, decode_ack, encode_ack, open_ack, seal_ack

FULL = UsageAck("edge-abc", 4100, "a" * 64, "b" * 64, 1_760_000_000.125, stored=4000, resend_from=101,
                downlink={"messages": [], "more": False})


@pytest.mark.parametrize("ack", [FULL, UsageAck("edge-abc", 0, "a" * 64, "", 0.0)])
def test_an_ack_round_trips_through_its_canonical_bytes(ack):
    payload = encode_ack(ack)
    assert decode_ack(payload) == ack
    assert encode_ack(decode_ack(payload)) == payload  # canonical: the same ack, the same bytes


def test_empty_optional_fields_stay_off_the_wire():
    body = json.loads(encode_ack(UsageAck("edge-abc", 3, "h", "h", 5.0, stored=3)))
    assert set(body) == {"device_id", "acked_seq", "batch_hash", "chain_hash", "hub_time", "stored"}


def test_an_ack_from_a_hub_that_does_not_send_stored_still_decodes():
    body = json.loads(encode_ack(FULL))
    del body["stored"]
    assert decode_ack(json.dumps(body).encode()).stored == 0


@pytest.mark.parametrize("change", [
    {"acked_seq": -1}, {"acked_seq": "12"}, {"acked_seq": True}, {"hub_time": "now"}, {"hub_time": -5},
    {"device_id": 7}, {"resend_from": 1.5}, {"downlink": [1, 2]}, {"stored": None},
])
def test_malformed_fields_are_refused(change):
    body = {**json.loads(encode_ack(FULL)), **change}
    with pytest.raises(FormatError, match="malformed"):
        decode_ack(json.dumps(body).encode())


@pytest.mark.parametrize("payload", [b"", b"[]", b"not json", b'{"device_id": "x"}', "\u00ff".encode("latin-1"),
                                     b'{"device_id":"x","acked_seq":1,"batch_hash":"h","chain_hash":"h","hub_time":Infinity}'])
def test_garbage_is_refused(payload):
    with pytest.raises(FormatError):
        decode_ack(payload)


def test_a_sealed_ack_opens_only_with_the_key_that_signed_it(tmp_path):
    hub, other = generate_key(tmp_path / "online.pem"), generate_key(tmp_path / "other.pem")
    envelope = seal_ack(FULL, hub)
    assert open_ack(envelope, hub.public_key) == FULL
    with pytest.raises(SignatureError):
        open_ack(envelope, other.public_key)
