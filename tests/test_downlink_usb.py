"""Hub-to-school messages on the technician's stick: ``hub import-usb`` writes each
device's signed messages, ``edge import-usb`` applies them exactly as the network does."""

from __future__ import annotations

import base64
import json

import pytest
from click.testing import CliRunner
from fixtures.common import SCHOOL
from fixtures.spaces import PNG
from fixtures.usb import PASSPHRASE, device_state

from edge_agent.sync import downlink
from edge_agent.cli import main
from edge_agent.spaces.people import find_by_number
from edge_agent.spaces.uploads import offer_to_county, own_resource, upload_resource
from hub_sync.core.errors import SignatureError
from hub_sync.hub.downlink import Downlink
from provisioning.sneakernet import export_usb, import_usb
from provisioning.sneakernet_hub import hub_import_usb
from provisioning.usb_apply import apply_stick

NEW_STUDENT = {"kind": "person", "row": {"name": "钱小新", "number": "G110101201503031236", "gender": "女",
                                         "grade": "一年级", "classes": ["一年级1班"], "role": "学生"}}


def enrolled_by_stick(usb_world):
    """A device provisioned by stick whose first export the hub has imported (so it is enrolled)."""
    usb_world.make()
    app = usb_world.appliance()
    apply_stick(app, usb_world.stick, PASSPHRASE, school=SCHOOL)
    app.journal.append("person:1", "viewed", "resource:r-pinyin", {})
    export_usb(app, usb_world.stick)
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    import_usb(app, usb_world.stick)
    return app


def messages_file(usb_world, app):
    return usb_world.stick / "school-edge" / SCHOOL / "down" / app.device_id / "downlink.json"


def test_notice_and_roster_change_travel_on_the_stick_and_apply_once(usb_world):
    app = enrolled_by_stick(usb_world)
    down = Downlink(usb_world.hub.db)
    down.notice([SCHOOL], "放假通知", "国庆放假七天")
    down.roster_changes(SCHOOL, [NEW_STUDENT])
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    body = messages_file(usb_world, app).read_bytes()
    assert "钱小新".encode() not in base64.b64decode(json.loads(body)["payload"])   # personal data sealed to the device
    out = CliRunner().invoke(main, ["edge", "import-usb", str(usb_world.stick), "--data", str(app.data_dir)], catch_exceptions=False)
    assert out.exit_code == 0 and "hub messages: 2 applied, 0 failed" in out.output
    assert app.db.execute("select subject, body from messages where kind = 'notice'").fetchall() == [("放假通知", "国庆放假七天")]
    assert find_by_number(app.db, "G110101201503031236").name == "钱小新"
    before = device_state(app)
    again = import_usb(app, usb_world.stick)                         # the same stick again: nothing twice
    assert again["messages"]["applied"] == 0 and device_state(app) == before


def test_hub_sends_only_what_the_device_reported_not_yet_applied(usb_world):
    app = enrolled_by_stick(usb_world)
    down = Downlink(usb_world.hub.db)
    down.notice([SCHOOL], "", "第一条")
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    import_usb(app, usb_world.stick)
    down.notice([SCHOOL], "", "第二条")
    export_usb(app, usb_world.stick)                                 # the signed manifest says: applied up to #1
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    answer = json.loads(base64.b64decode(json.loads(messages_file(usb_world, app).read_bytes())["payload"]))
    assert [m["seq"] for m in answer["messages"]] == [2]
    import_usb(app, usb_world.stick)
    assert [b for (b,) in app.db.execute("select body from messages where kind = 'notice' order by id")] == ["第一条", "第二条"]


def test_offered_upload_shows_county_received_after_a_stick_round_trip(usb_world):
    app = enrolled_by_stick(usb_world)
    from edge_agent.spaces.people import get_person

    teacher = get_person(app.db, find_by_number(app.db, "T001").id)
    rid = upload_resource(app.db, app.store, teacher, "pic.png", PNG, {"title": "我的图片", "subject": "数学"}, 1 << 20)["resource_id"]
    offer_to_county(app.db, teacher, rid)
    export_usb(app, usb_world.stick)
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    import_usb(app, usb_world.stick)
    assert own_resource(app.db, rid)["share_status"] == "pending"


def test_tampered_messages_on_the_stick_are_refused_and_nothing_is_applied(usb_world):
    app = enrolled_by_stick(usb_world)
    Downlink(usb_world.hub.db).notice([SCHOOL], "", "真的通知")
    hub_import_usb(usb_world.hub, usb_world.stick, packs=False)
    path = messages_file(usb_world, app)
    doc = json.loads(path.read_bytes())
    answer = json.loads(base64.b64decode(doc["payload"]))
    answer["messages"][0]["kind"] = "share_status"
    doc["payload"] = base64.b64encode(json.dumps(answer).encode()).decode()
    path.write_text(json.dumps(doc))
    before = device_state(app)
    with pytest.raises(SignatureError, match="not signed by the hub"):
        import_usb(app, usb_world.stick)
    assert downlink.cursor(app.db) == 0
    assert app.db.execute("select count(*) from messages").fetchone()[0] == 0
    assert device_state(app)[0] == before[0]
