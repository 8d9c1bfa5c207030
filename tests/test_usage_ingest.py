"""Hub usage storage: exactly-once ingest, chain and gap rules, refusals that change nothing."""

from __future__ import annotations

import json

import pytest

from hub_sync.formats.envelope import open_envelope, seal
from hub_sync.core.errors import DeviceError, FormatError, ReplayError, SignatureError
from hub_sync.formats.usage_ack import seal_ack
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.usage_batch import batch_hash, encode_batch
from fixtures.common import SCHOOL
from fixtures.usage import events


@pytest.fixture
def device(hub, tmp_path):
    signer = generate_key(tmp_path / "device.pem")
    Registry(hub.db).register("edge-a", SCHOOL, public_key_dict(signer))
    return signer


def signed(signer, first, n, prev="", device_id="edge-a", school=SCHOOL):
    payload = encode_batch(events(n, first_seq=first), device_id, school, prev)
    return seal("usage-batch", payload, signer), batch_hash(payload)


def snapshot(hub):
    """Everything ingestion may touch, to assert that a refusal changed nothing."""
    db = hub.db
    return [db.execute(f"select * from {t} order by 1, 2").fetchall() for t in ("usage_events", "device_usage_state", "usage_batches")]


def test_batch_is_stored_and_acknowledged_up_to_its_last_seq(hub, device):
    env, h = signed(device, 1, 300)
    ack = UsageIngest(hub.db).ingest(env)
    assert (ack.acked_seq, ack.batch_hash, ack.chain_hash, ack.stored, ack.resend_from) == (300, h, h, 300, None)
    rows = hub.db.execute("select seq, actor, verb, object, data from usage_events where device_id = 'edge-a' order by seq").fetchall()
    assert [r[0] for r in rows] == list(range(1, 301))
    first = events(1)[0]
    assert rows[0][1:] == (first.actor, first.verb, first.object, json.dumps(first.data, sort_keys=True, separators=(",", ":")))


def test_same_batch_twice_changes_nothing(hub, device):
    env, _ = signed(device, 1, 200)
    ingest = UsageIngest(hub.db)
    ingest.ingest(env)
    before = snapshot(hub)
    again = ingest.ingest(env)
    assert again.acked_seq == 200 and again.stored == 0
    assert snapshot(hub) == before


def test_overlapping_resend_stores_only_the_new_events_once(hub, device):
    ingest = UsageIngest(hub.db)
    env1, h1 = signed(device, 1, 100)
    ingest.ingest(env1)
    env2, h2 = signed(device, 101, 100, prev=h1)
    ingest.ingest(env2)          # stored, but say the acknowledgement was lost:
    env2b, _ = signed(device, 101, 150, prev=h1)  # the device resends from 101 with more events
    ack = ingest.ingest(env2b)
    assert (ack.acked_seq, ack.stored) == (250, 50)
    assert ingest.count("edge-a") == 250
    assert hub.db.execute("select count(distinct seq) from usage_events").fetchone()[0] == 250


def test_gap_stores_nothing_and_asks_for_the_missing_range(hub, device):
    ingest = UsageIngest(hub.db)
    env1, h1 = signed(device, 1, 100)
    ingest.ingest(env1)
    before = snapshot(hub)
    env3, _ = signed(device, 201, 50, prev="cd" * 32)
    ack = ingest.ingest(env3)
    assert (ack.acked_seq, ack.resend_from, ack.chain_hash, ack.stored) == (100, 101, h1, 0)
    assert snapshot(hub) == before


def test_batch_that_does_not_chain_is_refused_and_changes_nothing(hub, device):
    ingest = UsageIngest(hub.db)
    env1, _ = signed(device, 1, 100)
    ingest.ingest(env1)
    before = snapshot(hub)
    forked, _ = signed(device, 101, 10, prev="ee" * 32)
    with pytest.raises(ReplayError, match="chain"):
        ingest.ingest(forked)
    assert snapshot(hub) == before


def test_replayed_old_batch_changes_nothing(hub, device):
    ingest = UsageIngest(hub.db)
    env1, h1 = signed(device, 1, 100)
    ingest.ingest(env1)
    env2, _ = signed(device, 101, 100, prev=h1)
    ingest.ingest(env2)
    before = snapshot(hub)
    ack = ingest.ingest(env1)     # an attacker (or a confused link) replays the first batch
    assert (ack.acked_seq, ack.stored) == (200, 0)
    assert snapshot(hub) == before


def test_tampered_batch_is_refused_and_changes_nothing(hub, device):
    env, _ = signed(device, 1, 100)
    doc = json.loads(env)
    doc["signatures"][0]["sig"] = ("00" if doc["signatures"][0]["sig"][:2] != "00" else "11") + doc["signatures"][0]["sig"][2:]
    before = snapshot(hub)
    with pytest.raises(SignatureError):
        UsageIngest(hub.db).ingest(json.dumps(doc).encode())
    assert snapshot(hub) == before


def test_batch_signed_by_another_key_is_refused(hub, device, tmp_path):
    thief = generate_key(tmp_path / "other.pem")
    env, _ = signed(thief, 1, 10)
    with pytest.raises(SignatureError):
        UsageIngest(hub.db).ingest(env)
    assert UsageIngest(hub.db).count() == 0


def test_unknown_device_is_refused(hub, device, tmp_path):
    stranger = generate_key(tmp_path / "stranger.pem")
    env, _ = signed(stranger, 1, 10, device_id="edge-unknown")
    with pytest.raises(DeviceError, match="unknown device"):
        UsageIngest(hub.db).ingest(env)
    assert snapshot(hub) == [[], [], []]


def test_revoked_device_is_refused_and_changes_nothing(hub, device):
    ingest = UsageIngest(hub.db)
    env1, h1 = signed(device, 1, 10)
    ingest.ingest(env1)
    Registry(hub.db).revoke("edge-a")
    before = snapshot(hub)
    env2, _ = signed(device, 11, 10, prev=h1)
    with pytest.raises(DeviceError, match="revoked"):
        ingest.ingest(env2)
    assert snapshot(hub) == before


def test_batch_claiming_another_school_is_refused(hub, device):
    env, _ = signed(device, 1, 10, school="9999999999")
    with pytest.raises(FormatError, match="school code"):
        UsageIngest(hub.db).ingest(env)
    assert snapshot(hub) == [[], [], []]


@pytest.mark.parametrize("body", [b"", b"garbage", b'{"payload": "!!!"}', b"[]"])
def test_garbage_is_refused_as_a_format_error(hub, device, body):
    with pytest.raises(FormatError):
        UsageIngest(hub.db).ingest(body)
    assert snapshot(hub) == [[], [], []]


def test_acknowledgement_is_signed_by_the_online_key(hub, device):
    env, h = signed(device, 1, 10)
    ack = UsageIngest(hub.db).ingest(env)
    payload, _ = open_envelope(seal_ack(ack, hub.online_signer), "usage-ack", [hub.online_signer.public_key])
    assert json.loads(payload)["acked_seq"] == 10 and json.loads(payload)["batch_hash"] == h
    with pytest.raises(SignatureError):
        open_envelope(seal_ack(ack, hub.root_signer), "usage-ack", [hub.online_signer.public_key])


def test_usage_endpoint_answers_signed_ack_and_json_errors(hub, device):
    from hub_sync.hub.app import create_hub_app

    client = create_hub_app(hub).test_client()
    env, _ = signed(device, 1, 10)
    ok = client.post("/api/v1/hub/usage", data=env, content_type="application/vnd.school-edge.usage-batch+json")
    assert ok.status_code == 200
    assert json.loads(open_envelope(ok.data, "usage-ack", [hub.online_signer.public_key])[0])["acked_seq"] == 10
    before = snapshot(hub)
    bad = client.post("/api/v1/hub/usage", data=b"garbage")
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_format"
    Registry(hub.db).revoke("edge-a")
    refused = client.post("/api/v1/hub/usage", data=env)
    assert refused.status_code == 403 and "revoked" in refused.get_json()["error"]["message_en"]
    assert snapshot(hub) == before
