"""Pupils' hands, questions and poll answers during a live lesson: queued signed at the
appliance, delivered to a real hub (gunicorn) in order and exactly once, also when the
appliance died between sending and marking; polls started by the central teacher reach the
teaching point through the signed live state; bad input changes nothing."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fixtures.common import SCHOOL
from fixtures.usage import enroll

from edge_agent.sync.live_link import exchange
from edge_agent.sync.live_outbox import current_poll, pending, pending_count
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.keys import generate_key
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.formats.live_interaction import INTERACTION_KIND
from hub_sync.hub.accounts import Accounts
from hub_sync.hub.live_interaction import LiveInteraction
from hub_sync.hub.live_timetable import LiveTimetable

LESSON = "math-0302"
pytestmark = [pytest.mark.usefixtures("fast_kdf"), pytest.mark.slow]  # a served hub per test (~3 s)


@pytest.fixture
def school(world, county):
    """The world's appliance enrolled on the county's served hub, with a lesson on now."""
    enroll(world.appliance, county.hub, school_code=SCHOOL)
    LiveTimetable(county.hub.db).schedule(SCHOOL, {"lesson": LESSON, "start": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(),
                                                   "minutes": 40, "subject": "数学", "teacher": "王老师"})
    assert upload_pending(world.appliance, county.url).downlink.applied == 1
    with httpx.Client(timeout=10) as client:
        yield world, county, client


def stored(county) -> list[tuple]:
    return county.hub.db.execute("select seq, kind, pupil, body from live_messages order by seq").fetchall()


def test_hand_question_and_answer_arrive_in_order_once(school):
    world, county, client = school
    app = world.appliance
    assert world.call("student", "POST", f"/api/v1/live/{LESSON}/hand").status_code == 201
    r = world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "分母是什么？"})
    assert r.status_code == 201 and r.json == {"seq": 2, "state": "queued"}
    assert world.call("student2", "POST", f"/api/v1/live/{LESSON}/hand").status_code == 201
    assert pending_count(app.db) == 3 and stored(county) == []
    assert app.status()["live_messages_waiting"] == 3  # what `edge status` shows a technician
    result = exchange(app, client, county.url)
    assert result["sent"] == 3 and result["current"] == LESSON
    rows = stored(county)
    assert [(s, k) for s, k, _, _ in rows] == [(1, "hand"), (2, "question"), (3, "hand")]
    assert json.loads(rows[1][3])["text"] == "分母是什么？"
    assert pending_count(app.db) == 0
    me = world.call("student", "GET", "/api/v1/live/schedule").json
    assert me["current"]["lesson"] == LESSON and [m["state"] for m in me["mine"]] == ["delivered", "delivered"]
    # the teacher's view, per teaching point
    token = LiveInteraction(county.hub.db).new_teacher_token(LESSON)
    feed = client.get(f"{county.url}/api/v1/hub/live/{LESSON}/feed", headers={"X-Live-Token": token}).json()
    site = feed["schools"][0]
    assert site["school_code"] == SCHOOL and len(site["hands"]) == 2 and site["questions"][0]["text"] == "分母是什么？"


def test_a_resend_after_a_lost_answer_is_stored_once(school):
    """kill -9 after the hub stored the messages and before the appliance marked them: the
    next round sends the same envelopes again, the hub keeps one copy of each."""
    world, county, client = school
    app = world.appliance
    for text in ("一", "二", "三"):
        assert world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": text}).status_code == 201
    envelopes = [e for _, e in pending(app.db)]
    r = client.post(county.url + "/api/v1/hub/live/messages", json={"device": app.device_id, "envelopes": envelopes})
    assert r.json() == {"held": 3}  # ... and the appliance died here, marking nothing
    assert pending_count(app.db) == 3
    assert exchange(app, client, county.url)["sent"] == 3
    assert [json.loads(b)["text"] for _, _, _, b in stored(county)] == ["一", "二", "三"]
    assert world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "四"}).status_code == 201
    exchange(app, client, county.url)
    assert [s for s, *_ in stored(county)] == [1, 2, 3, 4]


def test_messages_after_a_gap_wait_for_the_missing_one(school):
    world, county, client = school
    app = world.appliance
    for _ in range(3):
        world.call("student", "POST", f"/api/v1/live/{LESSON}/hand")
    envelopes = [e for _, e in pending(app.db)]
    r = client.post(county.url + "/api/v1/hub/live/messages", json={"device": app.device_id, "envelopes": envelopes[1:]})
    assert r.json() == {"held": 0} and stored(county) == []
    exchange(app, client, county.url)
    assert [s for s, *_ in stored(county)] == [1, 2, 3]


def test_a_message_not_signed_by_the_device_stores_nothing(school, tmp_path):
    world, county, client = school
    app = world.appliance
    world.call("student", "POST", f"/api/v1/live/{LESSON}/hand")
    forged = seal(INTERACTION_KIND, canonical_json({"device": app.device_id, "seq": 2, "lesson": LESSON, "kind": "hand",
                                                    "pupil": "冒充", "at": 1.0}), generate_key(tmp_path / "other.pem"))
    r = client.post(county.url + "/api/v1/hub/live/messages",
                    json={"device": app.device_id, "envelopes": [pending(app.db)[0][1], forged.decode()]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    assert stored(county) == []
    r = client.post(county.url + "/api/v1/hub/live/messages", json={"device": "edge-nobody", "envelopes": []})
    assert r.status_code == 403 and stored(county) == []


def test_a_poll_reaches_the_pupils_and_the_counts_come_back_per_teaching_point(school):
    world, county, client = school
    app = world.appliance
    token = LiveInteraction(county.hub.db).new_teacher_token(LESSON)
    teacher = {"X-Live-Token": token, "X-Requested-With": "test"}
    r = client.post(f"{county.url}/api/v1/hub/live/{LESSON}/polls", json={"question": "1/2 和 2/4 一样大吗？",
                                                                          "options": ["一样", "不一样"]}, headers=teacher)
    assert r.status_code == 201, r.text
    poll = r.json()
    assert exchange(app, client, county.url)["poll"]["id"] == poll["id"]
    assert current_poll(app.db, LESSON)["options"] == ["一样", "不一样"]
    assert world.call("student", "GET", "/api/v1/live/schedule").json["poll"]["id"] == poll["id"]
    assert world.call("student", "POST", f"/api/v1/live/{LESSON}/answer", {"poll": poll["id"], "option": 1}).status_code == 201
    assert world.call("student", "POST", f"/api/v1/live/{LESSON}/answer", {"poll": poll["id"], "option": 0}).status_code == 201
    assert world.call("student2", "POST", f"/api/v1/live/{LESSON}/answer", {"poll": poll["id"], "option": 0}).status_code == 201
    exchange(app, client, county.url)
    feed = client.get(f"{county.url}/api/v1/hub/live/{LESSON}/feed", headers=teacher).json()
    assert feed["schools"][0]["counts"] == [2, 0]  # a pupil's last answer counts
    # the teacher ends it: the teaching point learns at its next round, and an answer is refused
    assert client.post(f"{county.url}/api/v1/hub/live/{LESSON}/polls/close", headers=teacher).status_code == 200
    assert exchange(app, client, county.url)["poll"] is None and current_poll(app.db, LESSON) is None
    before = pending_count(app.db)
    r = world.call("student", "POST", f"/api/v1/live/{LESSON}/answer", {"poll": poll["id"], "option": 0})
    assert r.status_code == 400 and r.json["error"]["message_en"] == "this poll is over"
    assert pending_count(app.db) == before


def test_the_teacher_routes_need_the_lessons_token(school):
    world, county, client = school
    LiveInteraction(county.hub.db).new_teacher_token(LESSON)
    r = client.get(f"{county.url}/api/v1/hub/live/{LESSON}/feed", headers={"X-Live-Token": "guess"})
    assert r.status_code == 403 and "teacher token" in r.json()["error"]["message_en"]
    r = client.post(f"{county.url}/api/v1/hub/live/{LESSON}/polls", json={"question": "q", "options": ["a", "b"]})
    assert r.status_code == 403
    assert county.hub.db.execute("select count(*) from live_polls").fetchone()[0] == 0
    page = client.get(f"{county.url}/live/{LESSON}/teacher")
    assert page.status_code == 200 and 'name="token"' in page.text
    wrong = client.post(f"{county.url}/live/{LESSON}/teacher", data={"token": "guess"})
    assert wrong.status_code == 303 and "refused=1" in wrong.headers["location"] and "set-cookie" not in wrong.headers


@pytest.mark.parametrize("role, path, body, status, message", [
    ("anonymous", "hand", None, 401, "log in first"),
    ("teacher", "hand", None, 403, ""),
    ("student", "question", {"text": "问" * 141}, 400, "longer than 140"),
    ("student", "question", {"text": "  "}, 400, "missing"),
    ("student", "question", {}, 400, "write a question"),
    ("student", "answer", {"poll": "p-none", "option": 0}, 400, "this poll is over"),
])
def test_bad_requests_from_tablets_queue_nothing(school, role, path, body, status, message):
    world, _county, _client = school
    r = world.call(role, "POST", f"/api/v1/live/{LESSON}/{path}", body)
    assert r.status_code == status, r.json
    assert message in r.json["error"]["message_en"]
    assert pending_count(world.appliance.db) == 0


def test_a_lesson_not_in_the_timetable_and_a_flood_are_refused(school):
    world, _county, _client = school
    r = world.call("student", "POST", "/api/v1/live/other-lesson/hand")
    assert r.status_code == 404 and pending_count(world.appliance.db) == 0
    codes = [world.call("student", "POST", f"/api/v1/live/{LESSON}/hand").status_code for _ in range(8)]
    assert codes == [201] * 6 + [429, 429]
    assert pending_count(world.appliance.db) == 6


def test_a_bureau_admin_signed_in_to_the_county_console_sees_the_feed_without_a_token(school):
    world, county, _client = school
    Accounts(county.hub.db).add("jiaoyuju", "bureau_admin", "a-long-county-password")
    Accounts(county.hub.db).add("kanban", "viewer", "a-long-county-password")
    world.call("student", "POST", f"/api/v1/live/{LESSON}/hand")
    exchange(world.appliance, _client, county.url)
    for name, status in (("kanban", 403), ("jiaoyuju", 200)):
        with httpx.Client(base_url=county.url, timeout=10) as browser:
            form = browser.get("/console/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            r = browser.post("/console/login", data={"name": name, "password": "a-long-county-password", "csrf_token": csrf})
            assert r.status_code in (302, 303), r.text
            feed = browser.get(f"/api/v1/hub/live/{LESSON}/feed")
            assert feed.status_code == status, (name, feed.text)
            if status == 200:
                assert len(feed.json()["schools"][0]["hands"]) == 1
                assert 'id="sites"' in browser.get(f"/live/{LESSON}/teacher").text


def test_pupils_messages_are_forgotten_after_a_month_and_the_count_goes_on(school):
    world, county, client = school
    app = world.appliance
    world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "上个月的问题"})
    exchange(app, client, county.url)
    county.hub.db.execute("update live_messages set received_at = received_at - 31 * 86400")
    county.hub.db.conn.commit()
    world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "今天的问题"})
    assert exchange(app, client, county.url)["sent"] == 1
    assert [(s, json.loads(b)["text"]) for s, _, _, b in stored(county)] == [(2, "今天的问题")]
    assert LiveInteraction(county.hub.db).held(app.device_id) == 2


def test_a_hub_restored_from_an_older_backup_gets_the_messages_it_lost_numbered_again(school):
    world, county, client = school
    app = world.appliance
    for text in ("一", "二"):
        world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": text})
    exchange(app, client, county.url)
    # the hub goes back to a backup taken after message 1
    county.hub.db.execute("delete from live_messages where seq > 1")
    county.hub.db.execute("update live_held set held = 1")
    county.hub.db.conn.commit()
    world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "三"})
    exchange(app, client, county.url)
    assert [(s, json.loads(b)["text"]) for s, _, _, b in stored(county)] == [(1, "一"), (2, "二"), (3, "三")]
    assert pending_count(app.db) == 0
    world.call("student", "POST", f"/api/v1/live/{LESSON}/question", {"text": "四"})
    exchange(app, client, county.url)
    assert [s for s, *_ in stored(county)] == [1, 2, 3, 4]
