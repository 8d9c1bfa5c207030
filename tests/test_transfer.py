"""A learner moving between schools through the hub: the old school marks them transferred
out and sends their space up (sealed to the hub) with its usage; the hub passes it to the
new school, which creates them with their progress, answers and submissions."""

from __future__ import annotations

import pytest
from fixtures.common import OTHER_SCHOOL, SCHOOL
from fixtures.county import poll
from fixtures.spaces import build_world, student_number
from fixtures.usage import enroll

from edge_agent.sync import downlink
from edge_agent.spaces.people import find_by_number, get_person
from edge_agent.spaces.progress import record_progress
from edge_agent.sync.hub_key import load_hub_key
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.errors import LinkError
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.downlink import Downlink
from hub_sync.core.sqlite_db import transaction

LEARNER = student_number(1)   # 王小明 of build_world, with a submission


pytestmark = pytest.mark.usefixtures("fast_kdf")  # argon2id with tiny costs in every test here


@pytest.fixture
def school_a(county, appliance, client):
    world = build_world(appliance, client)
    record_progress(appliance.db, get_person(appliance.db, world.ids["student"]), "vid-1",
                    {"state": "in_progress", "percent": 40, "position": 12.5})
    enroll(appliance, county.hub, school_code=SCHOOL)
    upload_pending(appliance, county.url)          # the school's usage so far is at the hub
    return appliance


def space_of(app, number):
    pid = find_by_number(app.db, number).id
    progress = app.db.execute("select resource_id, state, percent, position from progress where person_id = ?", [pid]).fetchall()
    kinds = sorted(r[0] for r in app.db.execute("select kind from space_history where person_id = ?", [pid]))
    return progress, kinds


def test_transfer_carries_progress_and_submissions_to_the_new_school(county, school_a):
    b = county.school(OTHER_SCHOOL, "b")
    r = county.cli("transfer", "--student", LEARNER, "--from", SCHOOL, "--to", OTHER_SCHOOL, "--class", "一年级(3)班")
    assert r.exit_code == 0, r.output
    sent = upload_pending(school_a, county.url)    # gets transfer_out, sends the space up in the same sync
    assert sent.downlink.applied == 1
    assert find_by_number(school_a.db, LEARNER).status == "transferred_out"
    [t] = Downlink(county.hub.db).transfers()
    assert t["status"] == "received"
    upload_pending(b, county.url)
    moved = find_by_number(b.db, LEARNER)
    assert moved.name == "王小明" and moved.status == "active"
    assert b.db.execute("select c.name from class_members m join classes c on c.id = m.class_id where m.person_id = ?",
                        [moved.id]).fetchall() == [("一年级(3)班",)]
    progress, kinds = space_of(b, LEARNER)
    assert progress == [("vid-1", "in_progress", 40.0, 12.5)]
    assert "submission" in kinds
    text = b.db.execute("select data from space_history where kind = 'submission'").fetchone()[0]
    assert "我的作业" in text
    assert space_of(school_a, LEARNER)[0] == progress   # the old school keeps its copy
    assert Downlink(county.hub.db).transfers()[0]["status"] == "delivered"   # B's signed journal said so


def test_old_school_keeps_the_space_until_the_hub_acknowledges_it(county, school_a):
    county.school(OTHER_SCHOOL, "b")
    county.cli("transfer", "--student", LEARNER, "--from", SCHOOL, "--to", OTHER_SCHOOL)
    hub = create_hub_app(county.hub).test_client()
    envelope = poll(hub, school_a).data
    answer = downlink.open_answer(envelope, load_hub_key(school_a.data_dir), school_a.device_id, SCHOOL)
    downlink.apply_answer(school_a, answer)        # applied, but the link is down: nothing went up yet
    pending = [e for e in school_a.journal.pending(0, 1000) if e.object.startswith("transfer:")]
    assert len(pending) == 1 and "box" in pending[0].data
    assert Downlink(county.hub.db).transfers()[0]["status"] == "waiting"
    assert space_of(school_a, LEARNER)[0] == [("vid-1", "in_progress", 40.0, 12.5)]
    county.server.kill()                            # the hub goes away mid-way
    with pytest.raises(LinkError):
        upload_pending(school_a, county.url, timeout=1.0)
    assert [e.object for e in school_a.journal.pending(0, 1000) if e.object.startswith("transfer:")] == [pending[0].object]
    county.server.start()
    upload_pending(school_a, county.url)
    assert not [e for e in school_a.journal.pending(0, 1000) if e.object.startswith("transfer:")]
    assert Downlink(county.hub.db).transfers()[0]["status"] == "received"


def test_transfer_of_a_learner_the_old_school_does_not_have_fails_there_and_waits(county, school_a):
    county.school(OTHER_SCHOOL, "b")
    county.cli("transfer", "--student", student_number(77), "--from", SCHOOL, "--to", OTHER_SCHOOL)
    result = upload_pending(school_a, county.url)
    assert result.downlink.failed == 1 and "transfer out" in result.downlink.failures[0]["reason"]
    assert Downlink(county.hub.db).transfers()[0]["status"] == "waiting"
    assert county.queued()[-1][0] == SCHOOL      # nothing was queued for the new school


@pytest.mark.parametrize("args, says", [
    (("--student", "G123", "--from", SCHOOL, "--to", OTHER_SCHOOL), "wrong shape"),
    (("--student", LEARNER, "--from", SCHOOL, "--to", SCHOOL), "the same"),
    (("--student", LEARNER, "--from", SCHOOL, "--to", "4499999999"), "no enrolled device"),
])
def test_invalid_transfer_is_refused_at_the_hub_with_nothing_queued(county, school_a, args, says):
    county.school(OTHER_SCHOOL, "b")
    before = county.queued()
    r = county.cli("transfer", *args)
    assert r.exit_code == 1 and says in r.output
    assert county.queued() == before and Downlink(county.hub.db).transfers() == []


def test_transfer_travels_on_the_technicians_stick_too(tmp_path, monkeypatch, hub_db):
    from fixtures.usb import PASSPHRASE, UsbWorld

    from provisioning.sneakernet import export_usb, import_usb
    from provisioning.sneakernet_hub import hub_import_usb
    from provisioning.usb_apply import apply_stick

    world = UsbWorld(tmp_path, db_url=hub_db())
    try:
        world.make()
        world.make(OTHER_SCHOOL, "青山小学")
        a, b = world.appliance("edge-a"), world.appliance("edge-b")
        apply_stick(a, world.stick, PASSPHRASE, school=SCHOOL)
        apply_stick(b, world.stick, PASSPHRASE, school=OTHER_SCHOOL)
        learner = "G110101201501011234"                          # 张三 of the stick's roster
        pid = find_by_number(a.db, learner).id
        with transaction(a.db):
            a.db.execute("insert into space_history (uid, person_id, kind, data, created_at) values ('h-1', ?, 'note', '{}', 1)", [pid])

        def visit():                                             # the technician: school A, county, schools A and B
            for app in (a, b):
                app.journal.append("person:1", "viewed", "resource:r-pinyin", {})
                export_usb(app, world.stick)
            hub_import_usb(world.hub, world.stick, packs=False)
            for app in (a, b):
                import_usb(app, world.stick)

        visit()                                                  # both enrolled
        Downlink(world.hub.db).transfer(learner, SCHOOL, OTHER_SCHOOL)
        visit()                                                  # A gets transfer_out and journals the space
        assert find_by_number(a.db, learner).status == "transferred_out"
        visit()                                                  # the space goes up; B gets transfer_in
        assert Downlink(world.hub.db).transfers()[0]["status"] == "received"
        moved = find_by_number(b.db, learner)
        assert moved is not None and moved.name == "张三"
        assert b.db.execute("select uid from space_history where person_id = ?", [moved.id]).fetchall() == [("h-1",)]
    finally:
        world.close()
