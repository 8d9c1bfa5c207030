"""Hub-to-school messages over the network: notices, roster changes and share status
reach the school through the signed usage acknowledgement or a poll, once each, in
order; bad input is refused at the hub; tampered or replayed messages change nothing."""

from __future__ import annotations

import base64
import json
import logging
import signal
import subprocess
import sys

import pytest
from fixtures.common import OTHER_SCHOOL, REPO, SCHOOL
from fixtures.county import notices, poll
from fixtures.servers import HubInFront
from fixtures.spaces import SCHOOL_ROSTER, build_world, roster_csv, student_number
from fixtures.usage import enroll

from edge_agent.sync import downlink
from edge_agent.spaces.people import find_by_number, get_person
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.spaces.uploads import offer_to_county, own_resource
from edge_agent.sync.hub_key import load_hub_key
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.errors import ReplayError, SignatureError
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.downlink import Downlink
from hub_sync.hub.registry import Registry
from hub_sync.core.sqlite_db import transaction

NEW_STUDENT = {"kind": "person", "row": {"name": "钱小新", "number": student_number(9), "gender": "女", "grade": "一年级",
                                         "classes": ["一年级(1)班"], "role": "学生"}}


pytestmark = pytest.mark.usefixtures("fast_kdf")  # argon2id with tiny costs in every test here


def edge_state(app) -> tuple:
    return (downlink.cursor(app.db), app.db.execute("select count(*) from messages").fetchone()[0],
            app.db.execute("select count(*) from people").fetchone()[0], downlink.log_entries(app.db))


def test_notice_posted_at_the_hub_arrives_after_one_sync_and_only_once(county):
    a, b = county.school(SCHOOL, "a"), county.school(OTHER_SCHOOL, "b")
    r = county.cli("notice", "--school", SCHOOL, "--subject", "停电通知", "--body", "周五下午停电，请提前同步")
    assert r.exit_code == 0 and "#1" in r.output
    county.cli("notice", "--all", "--body", "全县：期末考试安排已发布")
    first = upload_pending(a, county.url)          # nothing pending in the journal: one poll fetches them
    assert (first.batches, first.downlink.applied, first.downlink.cursor) == (1, 2, 2)  # the journal lines go up at once
    assert notices(a) == [("停电通知", "周五下午停电，请提前同步"), ("", "全县：期末考试安排已发布")]
    again = upload_pending(a, county.url)
    assert again.downlink.applied == 0 and len(notices(a)) == 2
    upload_pending(b, county.url)
    assert notices(b) == [("", "全县：期末考试安排已发布")]
    logged = a.db.execute("select count(*) from journal where verb = 'messaged' and actor = 'hub'").fetchone()[0] + \
        county.hub.db.execute("select count(*) from usage_events where verb = 'messaged' and actor = 'hub' and device_id = ?",
                              [a.device_id]).fetchone()[0]
    assert logged == 2                              # each notice journalled once (here or already uploaded)


def test_messages_ride_on_the_usage_acknowledgement_when_usage_is_due(county):
    a = county.school(SCHOOL, "a")
    a.journal.append("person:1", "viewed", "resource:r1", {})
    county.cli("notice", "--school", SCHOOL, "--body", "通知一")
    result = upload_pending(a, county.url)
    assert result.downlink.applied == 1 and notices(a) == [("", "通知一")]
    assert result.batches == 2                      # the usage batch (its ack brought the notice) and the notice's journal line


def test_notice_with_neither_school_nor_all_is_refused_and_nothing_is_queued(county):
    county.school(SCHOOL, "a")
    for args, says in (((), "give --school CODE or --all"), (("--school", SCHOOL, "--all"), "give --school CODE or --all"),
                       (("--school", "9999999999"), "no enrolled device for school 9999999999")):
        r = county.cli("notice", *args, "--body", "x")
        assert r.exit_code == 1 and says in r.output
        assert r.output.index("未发送" if "99" in says else "二选一") < r.output.index(says)   # Chinese first, then English
    assert county.queued() == []


def test_roster_change_from_the_hub_applies_at_the_school(county):
    a = county.school(SCHOOL, "a")
    import_roster(a.db, roster_csv(SCHOOL_ROSTER))
    r = county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", [
        NEW_STUDENT, {"kind": "graduate", "number": student_number(3)}]))
    assert r.exit_code == 0, r.output
    upload_pending(a, county.url)
    new = find_by_number(a.db, student_number(9))
    assert new is not None and new.name == "钱小新"
    assert a.db.execute("select c.name from class_members m join classes c on c.id = m.class_id where m.person_id = ?",
                        [new.id]).fetchall() == [("一年级(1)班",)]
    assert a.db.execute("select status from people where number = ?", [student_number(3)]).fetchone()[0] == "graduated"
    assert [e["status"] for e in downlink.log_entries(a.db)] == ["applied", "applied"]


@pytest.mark.parametrize("change, says", [
    ({"kind": "person", "row": {**NEW_STUDENT["row"], "number": "123"}}, "学籍号"),
    ({"kind": "person", "row": {**NEW_STUDENT["row"], "classes": []}}, "exactly one class"),
    ({"kind": "transfer_in", "row": NEW_STUDENT["row"]}, "school-edge hub transfer"),
    ({"kind": "class", "grades": ["十年级"]}, "name"),
    ("not json", "读取"),
])
def test_invalid_roster_change_is_refused_at_the_hub_with_nothing_queued(county, change, says):
    county.school(SCHOOL, "a")
    county.cli("notice", "--school", SCHOOL, "--body", "先发的通知")
    if change == "not json":
        path = county.tmp / "bad.json"
        path.write_text("{not json", "utf-8")
        path = str(path)
    else:
        path = county.write_json("bad.json", [NEW_STUDENT, change])   # one good and one bad: neither is queued
    r = county.cli("roster-change", "--school", SCHOOL, "--file", path)
    assert r.exit_code == 1
    assert says in r.output and "未发送" in r.output and "nothing queued" in r.output
    assert county.queued() == [(SCHOOL, 1, "notice")]


def test_message_that_cannot_apply_is_recorded_failed_and_does_not_block_the_next(county):
    a = county.school(SCHOOL, "a")
    import_roster(a.db, roster_csv(SCHOOL_ROSTER))
    county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", [
        {"kind": "class", "name": "九年级(9)班", "new_name": "九年级(8)班"},
        {"kind": "person", "row": {"name": "冯老师", "number": "t099", "gender": "男", "classes": ["不存在的班"], "role": "教师"}}]))
    county.cli("notice", "--school", SCHOOL, "--body", "之后的通知")
    result = upload_pending(a, county.url)
    assert (result.downlink.applied, result.downlink.failed) == (1, 2)
    log = {e["seq"]: e for e in downlink.log_entries(a.db)}
    assert log[1]["status"] == "failed" and "九年级(9)班" in log[1]["reason"]
    assert log[2]["status"] == "failed" and "不存在的班" in log[2]["reason"]
    assert find_by_number(a.db, "t099") is None                  # the failed change left nothing behind
    assert notices(a) == [("", "之后的通知")]
    status = a.status()
    assert status["hub_messages_failed"] == 2 and "九年级(9)班" in status["hub_messages_last_failures"]
    assert upload_pending(a, county.url).downlink.failed == 0    # a failed message is not retried forever


def test_teacher_offered_upload_shows_county_received_after_sync(county, client, appliance):
    world = build_world(appliance, client)
    enroll(appliance, county.hub, school_code=SCHOOL)
    rid = world.ids["upload"]
    offer_to_county(appliance.db, get_person(appliance.db, world.ids["teacher"]), rid)
    assert own_resource(appliance.db, rid)["share_status"] == "offered"
    upload_pending(appliance, county.url)
    shown = own_resource(appliance.db, rid)
    assert shown["share_status"] == "pending" and "received by the county" in shown["status_note"]
    assert county.queued() == [(SCHOOL, 1, "share_status")]
    upload_pending(appliance, county.url)
    assert county.queued() == [(SCHOOL, 1, "share_status")]   # the same offer is answered once


class TamperingRelay(HubInFront):
    """In front of the real hub app: changes a message box inside signed answers (acks and polls)."""

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        path = environ["PATH_INFO"] + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        answer = self.real.open(path, method=environ["REQUEST_METHOD"], data=body)
        data = answer.data
        if answer.status_code == 200 and data:
            doc = json.loads(data)
            payload = json.loads(base64.b64decode(doc["payload"]))
            messages = (payload.get("downlink") or payload).get("messages", [])
            for m in messages:
                m["kind"] = "notice" if m["kind"] != "notice" else "share_status"
            doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
            data = json.dumps(doc).encode()
        start_response(f"{answer.status_code} X", [("Content-Type", "application/json")])
        return [data]

@pytest.mark.parametrize("usage_due", [False, True], ids=["poll", "acknowledgement"])
def test_tampered_messages_are_refused_and_nothing_is_applied(county, usage_due, caplog):
    a = county.school(SCHOOL, "a")
    if usage_due:
        a.journal.append("person:1", "viewed", "resource:r1", {})
    county.cli("notice", "--school", SCHOOL, "--body", "真的通知")
    relay = TamperingRelay(county.hub)
    before = edge_state(a)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(SignatureError, match="not signed by the hub"):
            upload_pending(a, relay.url)
    finally:
        relay.close()
    assert edge_state(a) == before
    upload_pending(a, county.url)                   # the genuine hub still delivers it
    assert notices(a) == [("", "真的通知")]


def test_replayed_or_misaddressed_messages_change_nothing(county):
    a, b = county.school(SCHOOL, "a"), county.school(OTHER_SCHOOL, "b")
    county.cli("notice", "--school", SCHOOL, "--body", "一次")
    real = create_hub_app(county.hub).test_client()
    envelope = poll(real, a).data
    upload_pending(a, county.url)
    before = edge_state(a)
    answer = downlink.open_answer(envelope, load_hub_key(a.data_dir), a.device_id, SCHOOL)
    replayed = downlink.apply_answer(a, answer)                  # the old, genuine answer once more
    assert (replayed.applied, replayed.skipped) == (0, 1)
    assert edge_state(a) == before
    with pytest.raises(ReplayError, match="another device"):
        downlink.open_answer(envelope, load_hub_key(b.data_dir), b.device_id, OTHER_SCHOOL)
    assert notices(b) == []


def test_personal_data_travels_sealed_to_the_device(county):
    a = county.school(SCHOOL, "a")
    county.cli("roster-change", "--school", SCHOOL, "--file", county.write_json("c.json", NEW_STUDENT))
    real = create_hub_app(county.hub).test_client()
    envelope = poll(real, a).data
    payload = base64.b64decode(json.loads(envelope)["payload"])
    assert "钱小新".encode() not in payload and student_number(9).encode() not in payload
    assert b"\\u94b1" not in payload


def test_idle_poll_costs_one_small_request_and_an_empty_answer(county):
    a = county.school(SCHOOL, "a")
    result = upload_pending(a, county.url)
    assert (result.batches, result.bytes_received, result.downlink.applied) == (0, 0, 0)
    real = create_hub_app(county.hub).test_client()
    r = poll(real, a)
    assert (r.status_code, r.data) == (204, b"")
    assert Registry(county.hub.db).count() == 1


def test_only_the_registered_device_may_ask_for_its_schools_messages(county, tmp_path):
    from edge_agent.sync.downlink import poll_request
    from edge_agent.sync.usage_sync import DOWNLINK_PATH, POLL_CONTENT_TYPE
    from hub_sync.core.keys import generate_key

    a = county.school(SCHOOL, "a")
    county.cli("notice", "--school", SCHOOL, "--body", "只给本校")
    real = create_hub_app(county.hub).test_client()
    assert real.get(f"{DOWNLINK_PATH}?device={a.device_id}&after=0").status_code == 405  # no unsigned asking
    stranger = generate_key(tmp_path / "stranger.pem")
    for device_id in (a.device_id, "edge-nobody"):  # someone else's key, claiming to be a, or nobody
        r = real.post(DOWNLINK_PATH, data=poll_request(a.db, device_id, stranger), content_type=POLL_CONTENT_TYPE)
        assert r.status_code == 403 and "只给本校".encode() not in r.data
    r = real.post(DOWNLINK_PATH, data=b"not an envelope", content_type=POLL_CONTENT_TYPE)
    assert r.status_code == 400 and r.json["error"]["message"]
    assert Downlink(county.hub.db).waiting(SCHOOL, 0) == 1  # still waiting for the real device
    assert poll(real, a).status_code == 200


KILL_MID_APPLY = """
import json, os, signal, sys
from edge_agent.sync import downlink
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
app = Appliance.open(EdgeConfig.load(sys.argv[1], {"free_space_reserve_mb": 1, "advertise": False}))
notice, seen = downlink.APPLY["notice"], []
def notice_then_die(appliance, body):
    notice(appliance, body)
    seen.append(body)
    if len(seen) == 2:  # inside the second message's transaction, after its notice was written
        os.kill(os.getpid(), signal.SIGKILL)
downlink.APPLY["notice"] = notice_then_die
downlink.apply_answer(app, json.loads(open(sys.argv[2], encoding="utf-8").read()))
"""


def test_kill_9_while_applying_repeats_nothing_and_loses_nothing(county):
    a = county.school(SCHOOL, "a")
    for n in (1, 2, 3):
        county.cli("notice", "--school", SCHOOL, "--body", f"通知{n}")
    real = create_hub_app(county.hub).test_client()
    envelope = poll(real, a).data
    answer = downlink.open_answer(envelope, load_hub_key(a.data_dir), a.device_id, SCHOOL)
    path = county.tmp / "answer.json"
    path.write_text(json.dumps(answer, ensure_ascii=False), "utf-8")
    proc = subprocess.run([sys.executable, "-c", KILL_MID_APPLY, str(a.data_dir), str(path)], cwd=REPO, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL
    assert (downlink.cursor(a.db), notices(a)) == (1, [("", "通知1")])   # the second one's transaction was lost whole
    upload_pending(a, county.url)
    assert (downlink.cursor(a.db), notices(a)) == (3, [("", "通知1"), ("", "通知2"), ("", "通知3")])


@pytest.mark.parametrize("row", [
    NEW_STUDENT["row"],
    {**NEW_STUDENT["row"], "number": student_number(5).lower()},
    {**NEW_STUDENT["row"], "number": "G12"},
    {**NEW_STUDENT["row"], "grade": "十年级"},
    {**NEW_STUDENT["row"], "gender": "?"},
    {**NEW_STUDENT["row"], "classes": ["一班", "二班"]},
    {**NEW_STUDENT["row"], "parent_phone": "12345"},
    {**NEW_STUDENT["row"], "name": ""},
    {**NEW_STUDENT["row"], "role": "校长"},
    {"name": "冯老师", "number": "t099", "gender": "男", "classes": ["一班", "二班"], "role": "教师"},
    {"name": "冯老师", "number": "t", "gender": "男", "classes": [], "role": ["teacher"]},
])
def test_hub_checks_a_roster_line_as_the_school_does(row):
    from hub_sync.formats.roster_line import validate_row
    from hub_sync.hub.roster_change import row_problems

    assert (row_problems(row) == []) == (validate_row(row)[1] == [])


def test_message_of_a_kind_this_appliance_does_not_know_is_recorded_failed(county):
    a = county.school(SCHOOL, "a")
    down = Downlink(county.hub.db)
    with transaction(county.hub.db):             # a kind from a newer hub
        county.hub.db.execute("insert into downlink_messages values (?, 1, 'firmware', '{}', 0)", [SCHOOL])
    down.notice([SCHOOL], "", "之后的通知")
    result = upload_pending(a, county.url)
    assert (result.downlink.failed, result.downlink.applied) == (1, 1)
    assert "unknown hub message kind firmware" in result.downlink.failures[0]["reason"]

