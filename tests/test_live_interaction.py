"""Pupils' hands, questions and poll answers during a live lesson: queued signed at the
appliance, delivered to a real hub (gunicorn) in order and exactly once, also when the
appliance died between sending and marking; polls started by the central teacher reach the
teaching point through the signed live state; bad input changes nothing."""

from __future__ import annotations

import itertools
import json
import re
import signal
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from fixtures.leaks import owned_by_module
from fixtures.servers import GunicornHub, free_port
from fixtures.spaces import SCHOOL_ROSTER, roster_csv, student_number
from fixtures.usage import enroll

from edge_agent.spaces.const import CSRF_HEADER, SESSION_COOKIE
from edge_agent.spaces.people import find_by_number, get_person
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.spaces.sessions import create_session

from edge_agent.sync.live_link import exchange
from edge_agent.sync.live_outbox import current_poll, pending, pending_count
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.keys import generate_key
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.formats.live_interaction import INTERACTION_KIND
from hub_sync.hub import Hub
from hub_sync.hub.accounts import Accounts
from hub_sync.hub.live_interaction import LiveInteraction
from hub_sync.hub.live_timetable import LiveTimetable

pytestmark = pytest.mark.slow  # a served hub for the module, an appliance per test
_numbers = itertools.count(1)


@dataclass
class Point:
    """A teaching point of this module's county: an appliance enrolled with its own school code,
    its own lesson on now, and its pupils and teachers from the roster."""

    appliance: object
    client: object  # Flask's test client of the appliance
    hub: Hub
    url: str
    http: httpx.Client
    code: str
    lesson: str

    def call(self, role: str, method: str, url: str, json_body=None):
        """A request as ``role`` of the roster (a fresh session, CSRF header set)."""
        headers = {"X-Requested-With": "test"}
        if role != "anonymous":
            token, csrf = create_session(self.appliance.db, get_person(self.appliance.db, self.ids[role]), "test")
            headers |= {"Cookie": f"{SESSION_COOKIE}={token}", CSRF_HEADER: csrf}
        r = self.client.application.test_client(use_cookies=False).open(url, method=method, json=json_body, headers=headers)
        r.close()
        return r

    @property
    def ids(self) -> dict:
        db = self.appliance.db
        return {"student": find_by_number(db, student_number(1)).id, "student2": find_by_number(db, student_number(2)).id,
                "teacher": find_by_number(db, "t001").id}


@pytest.fixture(scope="module")
def county_hub(tmp_path_factory, hub_db):
    """One county hub under gunicorn for the module (each test has its own school and lesson)."""
    hub = Hub.init(tmp_path_factory.mktemp("live-hub") / "hub", reserve_mb=1, db_url=hub_db())
    server = GunicornHub(hub.data_dir, free_port()).start()
    owned_by_module(server.proc.pid)
    yield hub, server.url
    server.kill(signal.SIGTERM)
    hub.close()


@pytest.fixture
def point(county_hub, appliance, client, fast_kdf):
    hub, url = county_hub
    n = next(_numbers)
    p = Point(appliance, client, hub, url, httpx.Client(timeout=10), f"TP{n:03d}", f"math-{n:03d}")
    try:
        import_roster(appliance.db, roster_csv(SCHOOL_ROSTER))
        enroll(appliance, hub, school_code=p.code)
        LiveTimetable(hub.db).schedule(p.code, {"lesson": p.lesson, "start": (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(),
                                                "minutes": 40, "subject": "数学", "teacher": "王老师"})
        assert upload_pending(appliance, url).downlink.applied == 1
        yield p
    finally:
        p.http.close()


def stored(p: Point) -> list[tuple]:
    """(seq, kind, pupil, body) of what the hub holds from ``p``'s appliance."""
    return p.hub.db.execute("select seq, kind, pupil, body from live_messages where device_id = ? order by seq",
                            [p.appliance.device_id]).fetchall()


def test_hand_question_and_answer_arrive_in_order_once(point):
    p = point
    app = p.appliance
    assert p.call("student", "POST", f"/api/v1/live/{p.lesson}/hand").status_code == 201
    r = p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "分母是什么？"})
    assert r.status_code == 201 and r.json == {"seq": 2, "state": "queued"}
    assert p.call("student2", "POST", f"/api/v1/live/{p.lesson}/hand").status_code == 201
    assert pending_count(app.db) == 3 and stored(p) == []
    assert app.status()["live_messages_waiting"] == 3  # what `edge status` shows a technician
    result = exchange(app, p.http, p.url)
    assert result["sent"] == 3 and result["current"] == p.lesson
    rows = stored(p)
    assert [(s, k) for s, k, _, _ in rows] == [(1, "hand"), (2, "question"), (3, "hand")]
    assert json.loads(rows[1][3])["text"] == "分母是什么？"
    assert pending_count(app.db) == 0
    me = p.call("student", "GET", "/api/v1/live/schedule").json
    assert me["current"]["lesson"] == p.lesson and [m["state"] for m in me["mine"]] == ["delivered", "delivered"]
    # the teacher's view, per teaching point
    token = LiveInteraction(p.hub.db).new_teacher_token(p.lesson)
    feed = p.http.get(f"{p.url}/api/v1/hub/live/{p.lesson}/feed", headers={"X-Live-Token": token}).json()
    site = feed["schools"][0]
    assert site["school_code"] == p.code and len(site["hands"]) == 2 and site["questions"][0]["text"] == "分母是什么？"


def test_a_resend_after_a_lost_answer_is_stored_once(point):
    """kill -9 after the hub stored the messages and before the appliance marked them: the
    next round sends the same envelopes again, the hub keeps one copy of each."""
    p = point
    app = p.appliance
    for text in ("一", "二", "三"):
        assert p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": text}).status_code == 201
    envelopes = [e for _, e in pending(app.db)]
    r = p.http.post(p.url + "/api/v1/hub/live/messages", json={"device": app.device_id, "envelopes": envelopes})
    assert r.json() == {"held": 3}  # ... and the appliance died here, marking nothing
    assert pending_count(app.db) == 3
    assert exchange(app, p.http, p.url)["sent"] == 3
    assert [json.loads(b)["text"] for _, _, _, b in stored(p)] == ["一", "二", "三"]
    assert p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "四"}).status_code == 201
    exchange(app, p.http, p.url)
    assert [s for s, *_ in stored(p)] == [1, 2, 3, 4]


def test_messages_after_a_gap_wait_for_the_missing_one(point):
    p = point
    app = p.appliance
    for _ in range(3):
        p.call("student", "POST", f"/api/v1/live/{p.lesson}/hand")
    envelopes = [e for _, e in pending(app.db)]
    r = p.http.post(p.url + "/api/v1/hub/live/messages", json={"device": app.device_id, "envelopes": envelopes[1:]})
    assert r.json() == {"held": 0} and stored(p) == []
    exchange(app, p.http, p.url)
    assert [s for s, *_ in stored(p)] == [1, 2, 3]


def test_a_message_not_signed_by_the_device_stores_nothing(point, tmp_path):
    p = point
    app = p.appliance
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/hand")
    forged = seal(INTERACTION_KIND, canonical_json({"device": app.device_id, "seq": 2, "lesson": p.lesson, "kind": "hand",
                                                    "pupil": "冒充", "at": 1.0}), generate_key(tmp_path / "other.pem"))
    r = p.http.post(p.url + "/api/v1/hub/live/messages",
                    json={"device": app.device_id, "envelopes": [pending(app.db)[0][1], forged.decode()]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"
    assert stored(p) == []
    r = p.http.post(p.url + "/api/v1/hub/live/messages", json={"device": "edge-nobody", "envelopes": []})
    assert r.status_code == 403 and stored(p) == []


def test_a_poll_reaches_the_pupils_and_the_counts_come_back_per_teaching_point(point):
    p = point
    app = p.appliance
    token = LiveInteraction(p.hub.db).new_teacher_token(p.lesson)
    teacher = {"X-Live-Token": token, "X-Requested-With": "test"}
    r = p.http.post(f"{p.url}/api/v1/hub/live/{p.lesson}/polls", json={"question": "1/2 和 2/4 一样大吗？",
                                                                          "options": ["一样", "不一样"]}, headers=teacher)
    assert r.status_code == 201, r.text
    poll = r.json()
    assert exchange(app, p.http, p.url)["poll"]["id"] == poll["id"]
    assert current_poll(app.db, p.lesson)["options"] == ["一样", "不一样"]
    assert p.call("student", "GET", "/api/v1/live/schedule").json["poll"]["id"] == poll["id"]
    assert p.call("student", "POST", f"/api/v1/live/{p.lesson}/answer", {"poll": poll["id"], "option": 1}).status_code == 201
    assert p.call("student", "POST", f"/api/v1/live/{p.lesson}/answer", {"poll": poll["id"], "option": 0}).status_code == 201
    assert p.call("student2", "POST", f"/api/v1/live/{p.lesson}/answer", {"poll": poll["id"], "option": 0}).status_code == 201
    exchange(app, p.http, p.url)
    feed = p.http.get(f"{p.url}/api/v1/hub/live/{p.lesson}/feed", headers=teacher).json()
    assert feed["schools"][0]["counts"] == [2, 0]  # a pupil's last answer counts
    # the teacher ends it: the teaching point learns at its next round, and an answer is refused
    assert p.http.post(f"{p.url}/api/v1/hub/live/{p.lesson}/polls/close", headers=teacher).status_code == 200
    assert exchange(app, p.http, p.url)["poll"] is None and current_poll(app.db, p.lesson) is None
    before = pending_count(app.db)
    r = p.call("student", "POST", f"/api/v1/live/{p.lesson}/answer", {"poll": poll["id"], "option": 0})
    assert r.status_code == 400 and r.json["error"]["message_en"] == "this poll is over"
    assert pending_count(app.db) == before


def test_the_teacher_routes_need_the_lessons_token(point):
    p = point
    LiveInteraction(p.hub.db).new_teacher_token(p.lesson)
    r = p.http.get(f"{p.url}/api/v1/hub/live/{p.lesson}/feed", headers={"X-Live-Token": "guess"})
    assert r.status_code == 403 and "teacher token" in r.json()["error"]["message_en"]
    r = p.http.post(f"{p.url}/api/v1/hub/live/{p.lesson}/polls", json={"question": "q", "options": ["a", "b"]})
    assert r.status_code == 403
    assert p.hub.db.execute("select count(*) from live_polls where lesson = ?", [p.lesson]).fetchone()[0] == 0
    page = p.http.get(f"{p.url}/live/{p.lesson}/teacher")
    assert page.status_code == 200 and 'name="token"' in page.text
    wrong = p.http.post(f"{p.url}/live/{p.lesson}/teacher", data={"token": "guess"})
    assert wrong.status_code == 303 and "refused=1" in wrong.headers["location"] and "set-cookie" not in wrong.headers


@pytest.mark.parametrize("role, path, body, status, message", [
    ("anonymous", "hand", None, 401, "log in first"),
    ("teacher", "hand", None, 403, ""),
    ("student", "question", {"text": "问" * 141}, 400, "longer than 140"),
    ("student", "question", {"text": "  "}, 400, "missing"),
    ("student", "question", {}, 400, "write a question"),
    ("student", "answer", {"poll": "p-none", "option": 0}, 400, "this poll is over"),
])
def test_bad_requests_from_tablets_queue_nothing(point, role, path, body, status, message):
    p = point
    r = p.call(role, "POST", f"/api/v1/live/{p.lesson}/{path}", body)
    assert r.status_code == status, r.json
    assert message in r.json["error"]["message_en"]
    assert pending_count(p.appliance.db) == 0


def test_a_lesson_not_in_the_timetable_and_a_flood_are_refused(point):
    p = point
    r = p.call("student", "POST", "/api/v1/live/other-lesson/hand")
    assert r.status_code == 404 and pending_count(p.appliance.db) == 0
    codes = [p.call("student", "POST", f"/api/v1/live/{p.lesson}/hand").status_code for _ in range(8)]
    assert codes == [201] * 6 + [429, 429]
    assert pending_count(p.appliance.db) == 6


def test_a_bureau_admin_signed_in_to_the_county_console_sees_the_feed_without_a_token(point):
    p = point
    Accounts(p.hub.db).add("jiaoyuju", "bureau_admin", "a-long-county-password")
    Accounts(p.hub.db).add("kanban", "viewer", "a-long-county-password")
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/hand")
    exchange(p.appliance, p.http, p.url)
    for name, status in (("kanban", 403), ("jiaoyuju", 200)):
        with httpx.Client(base_url=p.url, timeout=10) as browser:
            form = browser.get("/console/login").text
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            r = browser.post("/console/login", data={"name": name, "password": "a-long-county-password", "csrf_token": csrf})
            assert r.status_code in (302, 303), r.text
            feed = browser.get(f"/api/v1/hub/live/{p.lesson}/feed")
            assert feed.status_code == status, (name, feed.text)
            if status == 200:
                assert len(feed.json()["schools"][0]["hands"]) == 1
                assert 'id="sites"' in browser.get(f"/live/{p.lesson}/teacher").text


def test_pupils_messages_are_forgotten_after_a_month_and_the_count_goes_on(point):
    p = point
    app = p.appliance
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "上个月的问题"})
    exchange(app, p.http, p.url)
    p.hub.db.execute("update live_messages set received_at = received_at - 31 * 86400")
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "今天的问题"})
    assert exchange(app, p.http, p.url)["sent"] == 1
    assert [(s, json.loads(b)["text"]) for s, _, _, b in stored(p)] == [(2, "今天的问题")]
    assert LiveInteraction(p.hub.db).held(app.device_id) == 2


def test_a_hub_restored_from_an_older_backup_gets_the_messages_it_lost_numbered_again(point):
    p = point
    app = p.appliance
    for text in ("一", "二"):
        p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": text})
    exchange(app, p.http, p.url)
    # the hub goes back to a backup taken after message 1
    p.hub.db.execute("delete from live_messages where seq > 1")
    p.hub.db.execute("update live_held set held = 1")
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "三"})
    exchange(app, p.http, p.url)
    assert [(s, json.loads(b)["text"]) for s, _, _, b in stored(p)] == [(1, "一"), (2, "二"), (3, "三")]
    assert pending_count(app.db) == 0
    p.call("student", "POST", f"/api/v1/live/{p.lesson}/question", {"text": "四"})
    exchange(app, p.http, p.url)
    assert [s for s, *_ in stored(p)] == [1, 2, 3, 4]
