"""The usage batch format: round trip, chain, compactness, refusal of damaged bytes (pure)."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from hub_sync.formats.envelope import open_envelope, seal
from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import generate_key
from hub_sync.formats.usage_batch import UsageEvent, batch_hash, decode_batch, encode_batch, read_header
from fixtures.common import SCHOOL
from fixtures.usage import events


def test_batch_round_trips_every_field_in_sequence_order():
    evs = events(500, first_seq=41)
    batch = decode_batch(encode_batch(evs, "edge-a", SCHOOL, "ab" * 32))
    assert batch.header.device_id == "edge-a" and batch.header.school_code == SCHOOL
    assert (batch.header.first_seq, batch.header.last_seq, batch.header.prev_hash) == (41, 540, "ab" * 32)
    assert batch.events() == [e._replace(ts=round(e.ts, 3)) for e in evs]


def test_wrong_clock_timestamps_survive_and_never_reorder():
    # 1970, years ahead, and backwards: order stays the sequence order, times are kept
    evs = [UsageEvent(1, 5.0, "s1", "viewed", "r", {}), UsageEvent(2, 4_102_444_800.0, "s1", "completed", "r", {"s": 3}),
           UsageEvent(3, 1.5, "s2", "viewed", "r", {}), UsageEvent(4, 1_760_000_000.25, "s2", "viewed", "r", {})]
    out = decode_batch(encode_batch(evs, "edge-a", SCHOOL)).events()
    assert [e.seq for e in out] == [1, 2, 3, 4]
    assert [e.ts for e in out] == [5.0, 4_102_444_800.0, 1.5, 1_760_000_000.25]


def test_same_events_give_same_bytes_and_the_hash_names_them():
    evs = events(100)
    a, b = encode_batch(evs, "edge-a", SCHOOL), encode_batch(evs, "edge-a", SCHOOL)
    assert a == b and decode_batch(a).hash == batch_hash(a)
    nxt = encode_batch(events(10, first_seq=101), "edge-a", SCHOOL, batch_hash(a))
    assert read_header(nxt).prev_hash == batch_hash(a)


def test_a_classroom_day_is_under_ten_bytes_per_event_before_signing():
    evs = events(12_000)
    assert len(encode_batch(evs, "edge-0123456789ab", SCHOOL)) / len(evs) < 10


def test_signed_batch_with_envelope_stays_under_forty_bytes_per_event(tmp_path):
    signer = generate_key(tmp_path / "device.pem")
    evs = events(3_000)
    env = seal("usage-batch", encode_batch(evs, "edge-0123456789ab", SCHOOL), signer)
    assert len(env) / len(evs) < 40
    payload, _ = open_envelope(env, "usage-batch", [signer.public_key])
    assert decode_batch(payload).events()[-1].seq == 3_000


def test_tampered_signed_batch_is_refused(tmp_path):
    signer = generate_key(tmp_path / "device.pem")
    payload = encode_batch(events(50), "edge-a", SCHOOL)
    env = json.loads(seal("usage-batch", payload, signer))
    forged = payload.replace(b'"last":50', b'"last":49')
    import base64
    env["payload"] = base64.b64encode(forged).decode()
    with pytest.raises(SignatureError):
        open_envelope(json.dumps(env).encode(), "usage-batch", [signer.public_key])


@pytest.mark.parametrize("damage", ["magic", "truncated", "header", "count", "index", "trailing_bytes", "first_with_prev"])
def test_damaged_batch_bytes_are_refused_with_a_format_error(damage):
    good = encode_batch(events(20), "edge-a", SCHOOL)
    hlen = struct.unpack(">H", good[4:6])[0]
    header, body = json.loads(good[6:6 + hlen]), zlib.decompress(good[6 + hlen:])

    def build(h, b):
        hb = json.dumps(h).encode()
        return b"SEB1" + struct.pack(">H", len(hb)) + hb + zlib.compress(b)

    bad = {
        "magic": b"XXXX" + good[4:],
        "truncated": good[:-7],
        "header": good[:6] + b"{" * hlen + good[6 + hlen:],
        "count": build({**header, "last": 25}, body),
        "index": build(header, body[:-1] + b"\xff"),
        "trailing_bytes": build(header, body + b"\0" * 10_000_000),
        "first_with_prev": build({**header, "prev": "ab" * 32}, body),
    }[damage]
    with pytest.raises(FormatError):
        decode_batch(bad)


def test_non_contiguous_events_cannot_be_batched():
    evs = events(5)
    with pytest.raises(FormatError):
        encode_batch([evs[0], evs[2]], "edge-a", SCHOOL)
