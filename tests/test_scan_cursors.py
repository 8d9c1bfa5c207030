"""A usage batch is stored with what goes with it in one commit, and the hub's readers of
usage events (the downlink's scan, teachers' offers) are moved past events that ask
nothing of them instead of reading them back; events they must read are still read,
also events an earlier request stored and left unread (a hub killed in between)."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from fixtures.common import SCHOOL
from fixtures.usage import events
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE, UsageEvent, batch_hash, encode_batch
from hub_sync.hub import scan_cursors
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.database import transaction
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.offers import Offers
from hub_sync.hub.registry import Registry

SHARED = {"title": "我的课件", "kind": "document", "uploader": "张老师", "subject": "语文", "grade": "一年级",
          "files": [{"path": "课件.pdf", "sha256": "ab" * 32, "size": 1234, "mime": "application/pdf"}]}


class Device:
    """A registered device that signs chained batches."""

    def __init__(self, hub, tmp_path) -> None:
        self.signer = generate_key(tmp_path / "device.pem")
        Registry(hub.db).register("edge-a", SCHOOL, public_key_dict(self.signer))
        self.next_seq, self.prev = 1, ""

    def batch(self, n: int, share: str = "") -> bytes:
        """The next ``n`` events, quiet ones, the last a teacher's offer of ``share`` if given."""
        evs = events(n, first_seq=self.next_seq)
        if share:
            last = evs[-1]
            evs[-1] = UsageEvent(last.seq, last.ts, "person:9", "shared", f"resource:{share}", SHARED)
        payload = encode_batch(evs, "edge-a", SCHOOL, self.prev)
        self.next_seq, self.prev = self.next_seq + n, batch_hash(payload)
        return seal("usage-batch", payload, self.signer)


@pytest.fixture
def device(hub, tmp_path):
    return Device(hub, tmp_path)


@pytest.fixture
def post(hub):
    client = create_hub_app(hub).test_client()

    def send(envelope: bytes) -> None:
        answer = client.post("/api/v1/hub/usage", data=envelope, content_type=BATCH_CONTENT_TYPE)
        assert answer.status_code == 200, answer.get_json()

    return send


def cursors(hub) -> tuple:
    return tuple(hub.db.scalar(f"select scanned_seq from {t} where device_id = 'edge-a'") for t in ("downlink_scan", "offer_scan"))


def queued(hub) -> list[tuple]:
    return [tuple(r) for r in hub.db.execute("select school_code, kind from downlink_messages order by seq")]


def offered(hub) -> list[str]:
    return [o.resource_id for o in Offers(hub.db).list()]


def test_a_quiet_batch_is_one_commit_and_its_readers_are_moved_past_it(hub, device, post):
    post(device.batch(10))  # the first: makes this month's partition (PostgreSQL) in a commit of its own
    assert cursors(hub) == (10, 10)
    commits = []

    def count(conn) -> None:
        commits.append(conn)

    event.listen(hub.db.engine, "commit", count)
    try:
        post(device.batch(20))
    finally:
        event.remove(hub.db.engine, "commit", count)
    assert len(commits) == 1  # the events, roll-ups, relay copy, last seen and both cursors together
    assert cursors(hub) == (30, 30)
    assert UsageIngest(hub.db).count("edge-a") == 30 and offered(hub) == []


def test_a_batch_with_an_offer_is_read_after_it_is_stored(hub, device, post):
    post(device.batch(10))
    post(device.batch(10, share="res-up-1"))
    assert offered(hub) == ["res-up-1"]
    assert queued(hub) == [(SCHOOL, "share_status")]
    assert cursors(hub) == (20, 20)


def test_events_a_killed_hub_left_unread_are_read_with_the_next_quiet_batch(hub, device, post):
    post(device.batch(10))
    # stored, then the hub died before its readers looked: the library call stores and reads nothing
    UsageIngest(hub.db).ingest(device.batch(10, share="res-up-2"))
    assert cursors(hub) == (10, 10) and offered(hub) == []
    post(device.batch(10))  # quiet itself, but the readers are behind: not passed over
    assert offered(hub) == ["res-up-2"]
    assert queued(hub) == [(SCHOOL, "share_status")]
    assert cursors(hub) == (30, 30)


def test_a_cursor_is_never_moved_back_nor_past_events_left_unread(hub, device, post):
    post(device.batch(10))
    with transaction(hub.db):
        assert scan_cursors.pass_over(hub.db, "offer_scan", "edge-a", 10, 5)  # a reader that got further keeps its place
        assert not scan_cursors.pass_over(hub.db, "offer_scan", "edge-a", 12, 20)  # 11 and 12 unread: not skipped
    assert cursors(hub) == (10, 10)
    with pytest.raises(ValueError):
        scan_cursors.pass_over(hub.db, "devices", "edge-a", 0, 1)
