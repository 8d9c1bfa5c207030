"""The hub's devices: listed and revoked by the technician; a revoked device is refused and
its queue dropped; a replacement device gets only what is queued after it enrolled; the
personal data in a queue is gone from the hub once every device acknowledged it. Against
the hub under a real gunicorn, devices enrolled through real bundles over HTTP."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from fixtures.common import OTHER_SCHOOL, SCHOOL
from fixtures.spaces import CLASS_A, SCHOOL_ROSTER, build_world, roster_csv, student_number
from fixtures.usage import enroll

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.spaces.people import find_by_number
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.sync import downlink
from edge_agent.sync.content_sync import enroll_now
from edge_agent.sync.usage_sync import DOWNLINK_PATH, POLL_CONTENT_TYPE, upload_pending
from hub_sync.core.errors import DeviceError
from hub_sync.core.keys import load_signer
from hub_sync.hub.downlink import Downlink
from provisioning.apply import apply_bundle
from provisioning.bundle import make_bundle

pytestmark = pytest.mark.usefixtures("fast_kdf")

PHONE = "13912345678"
NEW_STUDENT = {"kind": "person", "row": {"name": "钱小新", "number": student_number(9), "gender": "女", "grade": "一年级",
                                         "classes": [CLASS_A], "role": "学生", "parent_phone": PHONE}}
PERSONAL = ("钱小新".encode(), student_number(9).encode(), PHONE.encode())
ESSAY = "我的作文：" + "春天来了，小草绿了。" * 600


def provisioned(county, name: str, school: str = SCHOOL) -> Appliance:
    """An appliance provisioned from its own bundle and enrolled over HTTP, as a technician does it."""
    bundle = county.tmp / f"bundle-{name}"
    make_bundle(county.hub, school, "红星小学", county.url, "rsync://127.0.0.1:9/content", bundle)
    app = Appliance.open(EdgeConfig.load(county.tmp / name, {"free_space_reserve_mb": 1, "advertise": False}))
    county.apps.append(app)
    apply_bundle(app, bundle)
    enroll_now(app)
    import_roster(app.db, roster_csv(SCHOOL_ROSTER))
    return app


def hub_queue(county, school: str = SCHOOL) -> list[tuple]:
    """(seq, kind, payload held?) of a school's queue at the hub."""
    return county.hub.db.execute("select seq, kind, payload != '' from downlink_messages where school_code = ? order by seq",
                                 [school]).fetchall()


def raw_poll(county, app) -> httpx.Response:
    body = downlink.poll_request(app.db, app.device_id, load_signer(app.data_dir / DEVICE_KEY_FILE))
    return httpx.post(county.url + DOWNLINK_PATH, content=body, headers={"Content-Type": POLL_CONTENT_TYPE}, timeout=10)


def test_devices_lists_each_device_with_school_times_and_state(county):
    assert "No device enrolled yet" in county.cli("devices").output
    a = provisioned(county, "a")
    b = provisioned(county, "b", OTHER_SCHOOL)
    listing = county.cli("devices").output
    assert "设备 device" in listing and "最近联系 last contact" in listing
    row_a = next(line for line in listing.splitlines() if line.startswith(a.device_id))
    assert SCHOOL in row_a and "从未 never" in row_a and "在用 active" in row_a  # enrolled, not heard from since
    upload_pending(a, county.url)                    # a sync: a verified poll is contact
    row_a = next(line for line in county.cli("devices").output.splitlines() if line.startswith(a.device_id))
    assert "从未 never" not in row_a and row_a.count("20") >= 2  # enrolled at, last contact: two dates
    county.cli("revoke", b.device_id)
    row_b = next(line for line in county.cli("devices").output.splitlines() if line.startswith(b.device_id))
    assert OTHER_SCHOOL in row_b and "已吊销 revoked" in row_b


def test_revoked_device_is_refused_and_its_queue_dropped(county):
    a = provisioned(county, "a")
    assert county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", NEW_STUDENT)).exit_code == 0
    assert hub_queue(county) == [(1, "roster_change", 1)]
    revoked = county.cli("revoke", a.device_id)
    assert revoked.exit_code == 0 and "已吊销 Revoked" in revoked.output and "dropped 1 message" in revoked.output
    assert hub_queue(county) == [(1, "roster_change", 0)]  # nobody else waits for it: the personal data is gone

    a.journal.append("person:1", "viewed", "resource:r1", {})
    stored = county.hub.db.execute("select count(*) from usage_events").fetchone()[0]
    pending = a.journal.pending_count()
    with pytest.raises(DeviceError) as refused:
        upload_pending(a, county.url)
    assert "已被吊销" in refused.value.zh and "is revoked; its data is refused" in refused.value.en
    r = raw_poll(county, a)
    assert r.status_code == 403 and r.json()["error"]["message_en"].endswith("is revoked; its data is refused")
    assert "已被吊销" in r.json()["error"]["message"]
    # nothing changed: no event stored, nothing acknowledged, nothing applied at the school
    assert county.hub.db.execute("select count(*) from usage_events").fetchone()[0] == stored
    assert county.hub.db.execute("select count(*) from downlink_reported").fetchone()[0] == 0
    assert a.journal.pending_count() == pending and find_by_number(a.db, student_number(9)) is None

    for device, says in ((a.device_id, "already revoked"), ("edge-nobody", "unknown device")):
        again = county.cli("revoke", device)
        assert again.exit_code == 1 and says in again.output and "Traceback" not in again.output
    assert hub_queue(county) == [(1, "roster_change", 0)]


def test_replacement_device_gets_only_messages_queued_after_it_enrolled(county):
    old = provisioned(county, "old")
    county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", NEW_STUDENT))
    county.cli("notice", "--school", SCHOOL, "--body", "旧设备的通知")
    new = provisioned(county, "new")                 # its replacement, from a new bundle; the old one still active
    assert hub_queue(county) == [(1, "roster_change", 1), (2, "notice", 1)]  # held for the old device
    assert raw_poll(county, new).status_code == 204  # asking from 0: nothing of the old queue
    assert upload_pending(new, county.url).downlink.applied == 0
    assert find_by_number(new.db, student_number(9)) is None
    county.cli("revoke", old.device_id)              # the old box broke (or was stolen)
    assert hub_queue(county) == [(1, "roster_change", 0), (2, "notice", 0)]
    county.cli("notice", "--school", SCHOOL, "--body", "给新设备的通知")
    result = upload_pending(new, county.url)
    assert result.downlink.applied == 1 and [e["seq"] for e in downlink.log_entries(new.db)] == [3]
    assert new.db.execute("select body from messages where kind = 'notice'").fetchall() == [("给新设备的通知",)]


def test_personal_data_is_gone_from_the_hub_once_every_device_acknowledged_it(county):
    a1, a2 = provisioned(county, "a1"), provisioned(county, "a2")   # two appliances of one school
    b = provisioned(county, "b", OTHER_SCHOOL)
    county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", NEW_STUDENT))
    county.cli("notice", "--school", OTHER_SCHOOL, "--body", "别校的通知")
    assert hub_queue(county) == [(1, "roster_change", 1)]

    upload_pending(a1, county.url)                    # applied at a1, acknowledged by its journal going up
    assert find_by_number(a1.db, student_number(9)).name == "钱小新"
    assert hub_queue(county) == [(1, "roster_change", 1)]  # a2 has not got it yet: kept
    upload_pending(a2, county.url)
    assert find_by_number(a2.db, student_number(9)).name == "钱小新"
    assert hub_queue(county) == [(1, "roster_change", 0)]  # delivered everywhere: the payload is blanked
    assert hub_queue(county, OTHER_SCHOOL) == [(1, "notice", 1)]  # another school's queue is its own

    # not only unreachable: the bytes are gone from the database file (secure_delete), once the
    # write-ahead log is checkpointed into it (SQLite does that by itself as the log grows)
    data = checkpointed_db(county)
    assert not [p for p in PERSONAL if p in data]

    county.cli("notice", "--school", SCHOOL, "--body", "之后的通知")  # numbering goes on after a blanked message
    upload_pending(a1, county.url)
    assert [e["seq"] for e in downlink.log_entries(a1.db)][:1] == [2]
    upload_pending(b, county.url)
    assert hub_queue(county, OTHER_SCHOOL) == [(1, "notice", 0)]


def test_a_transferred_space_is_gone_from_the_hub_once_the_new_school_has_it(county, appliance, client):
    world = build_world(appliance, client)           # 王小明 has a submission: 我的作业
    r = world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/submissions",
                   {"text": ESSAY})
    assert r.status_code == 201, r.json              # a long one too: the space spans several database pages
    enroll(appliance, county.hub, school_code=SCHOOL)
    upload_pending(appliance, county.url)
    b = county.school(OTHER_SCHOOL, "b")
    county.cli("transfer", "--student", student_number(1), "--from", SCHOOL, "--to", OTHER_SCHOOL)
    upload_pending(appliance, county.url)            # transfer_out applied, the space goes up sealed to the hub
    assert [k for _, k, held in hub_queue(county, OTHER_SCHOOL) if held] == ["transfer_in"]
    assert checkpointed_db(county).count("我的作业".encode()) >= 1  # the space waits at the hub, readable by it
    upload_pending(b, county.url)
    assert find_by_number(b.db, student_number(1)).name == "王小明"
    assert hub_queue(county, OTHER_SCHOOL) == [(1, "transfer_in", 0)] and hub_queue(county) == [(1, "transfer_out", 0)]
    data = checkpointed_db(county)
    assert "我的作业".encode() not in data and "王小明".encode() not in data and "春天来了".encode() not in data
    assert Downlink(county.hub.db).transfers()[0]["status"] == "delivered"  # the bookkeeping stays


def checkpointed_db(county) -> bytes:
    """The hub database file's bytes once its write-ahead log is checkpointed into it. On
    PostgreSQL, whose old row versions stay in its files until a vacuum reuses them
    (docs/spaces-and-privacy.md), every row of the tables that held the messages, as text."""
    if county.hub.db.dialect == "postgresql":
        return "".join(county.hub.db.scalar(f"select coalesce(string_agg(t::text, ''), '') from {table} t")
                       for table in ("downlink_messages", "transfers")).encode()
    with sqlite3.connect(county.hub.data_dir / "hub.db") as db:
        assert db.execute("pragma wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    return (county.hub.data_dir / "hub.db").read_bytes()
