"""Messages (notices, announcements, 家校互动) with read state; teachers' own
resources offered to the county; favourites and notes."""

from __future__ import annotations

import io
import json


from edge_agent.spaces.messages import post_notice
from edge_agent.spaces.uploads import set_share_status

from fixtures.spaces import PNG


def _inbox(w, role):
    return w.call(role, "GET", "/api/v1/messages").json


def test_hub_notice_reaches_everyone_with_its_own_read_state(world):
    notice = post_notice(world.db, "停电通知", "周五下午停电")
    for role in ("student", "teacher", "parent", "technician"):
        assert notice["id"] in [m["id"] for m in _inbox(world, role)["messages"]]
    assert world.call("student", "POST", f"/api/v1/messages/{notice['id']}/read").status_code == 200
    assert [m["read"] for m in _inbox(world, "student")["messages"] if m["id"] == notice["id"]] == [True]
    assert [m["read"] for m in _inbox(world, "teacher")["messages"] if m["id"] == notice["id"]] == [False]


def test_class_announcement_reaches_the_class_and_its_parents_only(world):
    mid = world.ids["message"]
    assert mid in [m["id"] for m in _inbox(world, "student")["messages"]]
    assert mid in [m["id"] for m in _inbox(world, "parent")["messages"]]
    assert mid not in [m["id"] for m in _inbox(world, "other_student")["messages"]]
    assert mid not in [m["id"] for m in _inbox(world, "other_parent")["messages"]]
    unread = _inbox(world, "student")["unread"]
    world.call("student", "POST", f"/api/v1/messages/{mid}/read")
    assert _inbox(world, "student")["unread"] == unread - 1


def test_teacher_and_parent_converse_both_ways(world):
    r = world.call("teacher", "POST", "/api/v1/messages", {"recipient_id": world.ids["parent"], "body": "王小明今天很认真"})
    assert r.status_code == 201
    reply = world.call("parent", "POST", "/api/v1/messages", {"recipient_id": world.ids["teacher"], "body": "谢谢老师"})
    assert reply.status_code == 201
    assert reply.json["id"] in [m["id"] for m in _inbox(world, "teacher")["messages"]]
    # a teacher of another class, and another parent, cannot join in
    assert world.call("other_teacher", "POST", "/api/v1/messages", {"recipient_id": world.ids["parent"], "body": "hi"}).status_code == 403
    assert world.call("other_parent", "POST", "/api/v1/messages", {"recipient_id": world.ids["teacher"], "body": "hi"}).status_code == 403
    assert r.json["id"] not in [m["id"] for m in _inbox(world, "other_parent")["messages"]]
    assert world.db.execute("select count(*) from journal where verb = 'messaged'").fetchone()[0] == 3


def test_empty_message_is_refused(world):
    r = world.call("teacher", "POST", "/api/v1/messages", {"recipient_id": world.ids["parent"], "body": "  "})
    assert r.status_code == 400


def test_teacher_upload_enters_the_library_at_once(world):
    rid = world.ids["upload"]
    r = world.call("student", "GET", f"/api/v1/resources/{rid}")
    assert r.status_code == 200 and r.json["source"] == "teacher" and r.json["files"][0]["mime"] == "image/png"
    mine = world.call("teacher", "GET", "/api/v1/uploads").json["resources"]
    assert [(m["resource_id"], m["share_status"]) for m in mine] == [(rid, "private")]
    (event,) = [json.loads(r[0]) for r in world.db.execute("select data from journal where verb = 'uploaded'")]
    assert event["subject"] == "数学" and event["mime"] == "image/png"


def test_teacher_uploads_an_exercise_set(world):
    from edge_agent.demo.sample_library import exercise_set
    r = world.call("teacher", "POST", "/api/v1/uploads", data={"file": (io.BytesIO(exercise_set("口算", "数学", 2)), "e.json"),
                                                                 "title": "口算", "kind": "exercise"}, content_type="multipart/form-data")
    assert r.status_code == 201 and r.json["kind"] == "exercise"
    bad = world.call("teacher", "POST", "/api/v1/uploads", data={"file": (io.BytesIO(b"{}"), "e.json"), "title": "坏", "kind": "exercise"},
                     content_type="multipart/form-data")
    assert bad.status_code == 400


def test_upload_of_a_wrong_type_or_without_title_changes_nothing(world):
    before = world.db.execute("select count(*) from resources").fetchone()[0]
    r = world.call("teacher", "POST", "/api/v1/uploads", data={"file": (io.BytesIO(b"\x7fELF\x02\x01\x01" + b"\x00" * 60), "a.mp4"),
                                                                 "title": "x"}, content_type="multipart/form-data")
    assert r.status_code == 415
    r = world.call("teacher", "POST", "/api/v1/uploads", data={"file": (io.BytesIO(PNG), "a.png")}, content_type="multipart/form-data")
    assert r.status_code == 400
    assert world.db.execute("select count(*) from resources").fetchone()[0] == before


def test_offering_to_the_county_rides_up_with_the_journal_and_shows_status(world):
    rid = world.ids["upload"]
    r = world.call("teacher", "POST", f"/api/v1/uploads/{rid}/offer")
    assert r.status_code == 200 and r.json["share_status"] == "offered"
    (shared,) = [(r[0], json.loads(r[1])) for r in world.db.execute("select object, data from journal where verb = 'shared'")]
    assert shared[0] == f"resource:{rid}" and shared[1]["files"][0]["mime"] == "image/png"
    assert world.call("teacher", "POST", f"/api/v1/uploads/{rid}/offer").status_code == 409
    set_share_status(world.db, rid, "approved", "审核通过")
    mine = world.call("teacher", "GET", "/api/v1/uploads").json["resources"]
    assert mine[0]["share_status"] == "approved" and mine[0]["status_note"] == "审核通过"


def test_favourites_and_notes_are_personal(world):
    assert world.call("student", "PUT", "/api/v1/favourites/vid-1", {"note": "第二遍再看"}).status_code == 200
    assert world.call("student", "GET", "/api/v1/favourites").json["favourites"][0]["note"] == "第二遍再看"
    assert world.call("other_student", "GET", "/api/v1/favourites").json["favourites"] == []
    assert world.call("student", "PUT", "/api/v1/favourites/nope", {}).status_code == 404
    world.call("student", "DELETE", "/api/v1/favourites/vid-1")
    assert world.call("student", "GET", "/api/v1/favourites").json["favourites"] == []
