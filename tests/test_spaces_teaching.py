"""Teaching through the API: assignments, answers, progress, submissions, grading,
the class summary and the student's home, each act journaled."""

from __future__ import annotations

import io
import time

import pytest

from fixtures.spaces import PNG, add_exercise


def _count(w, table):
    return w.db.execute(f"select count(*) from {table}").fetchone()[0]


def _journal(w, verb):
    return [tuple(r) for r in w.db.execute("select actor, object from journal where verb = ?", [verb])]


def test_student_sees_questions_without_answers_and_is_graded_at_once(world):
    a = world.call("student", "GET", f"/api/v1/assignments/{world.ids['assignment']}").json
    assert [q["type"] for q in a["questions"]] == ["single", "truefalse", "multiple", "fill"]
    assert all("answer" not in q for q in a["questions"])
    r = world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/answers",
                   {"answers": {"q1": 1, "q2": True, "q3": [0, 2], "q4": "１２"}})
    assert r.status_code == 201 and r.json["score"] == 4 and r.json["attempt"] == 1
    assert (f"person:{world.ids['student']}", f"assignment:{world.ids['assignment']}") in _journal(world, "answered")


def test_attempts_are_limited_by_the_exercise_set(world):
    add_exercise(world.appliance, "ex-once", attempts=1)
    aid = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/assignments", {"resource_id": "ex-once"}).json["id"]
    url = f"/api/v1/assignments/{aid}/answers"
    assert world.call("student", "POST", url, {"answers": {"q1": 0}}).status_code == 201
    r = world.call("student", "POST", url, {"answers": {"q1": 1}})
    assert r.status_code == 409 and "no attempts left" in r.json["error"]["message_en"]
    assert world.db.execute("select count(*) from answers where assignment_id = ?", [aid]).fetchone()[0] == 1


def test_assignment_to_chosen_students_only_reaches_them(world):
    r = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/assignments",
                   {"resource_id": "vid-1", "students": [world.ids["student2"]]})
    aid = r.json["id"]
    assert r.json["students"] == [world.ids["student2"]]
    assert world.call("student", "GET", f"/api/v1/assignments/{aid}").status_code == 403
    assert aid not in [a["id"] for a in world.call("student", "GET", "/api/v1/me/home").json["assignments"]]
    # a student of another class cannot be chosen
    r = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/assignments",
                   {"resource_id": "vid-1", "students": [world.ids["other_student"]]})
    assert r.status_code == 400


def test_submission_after_a_closed_due_date_is_refused_and_nothing_is_stored(world):
    r = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/assignments",
                   {"title": "写一篇日记", "due_at": time.time() - 60})
    aid = r.json["id"]
    before = _count(world, "submissions"), _count(world, "journal")
    r = world.call("student", "POST", f"/api/v1/assignments/{aid}/submissions", {"text": "今天下雨了"})
    assert r.status_code == 409 and "due date has passed" in r.json["error"]["message_en"]
    assert (_count(world, "submissions"), _count(world, "journal")) == before


def test_late_work_is_accepted_when_the_teacher_allows_it(world):
    aid = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/assignments",
                     {"title": "日记", "due_at": time.time() - 60, "allow_late": True}).json["id"]
    assert world.call("student", "POST", f"/api/v1/assignments/{aid}/submissions", {"text": "补交"}).status_code == 201


def test_wrong_type_upload_is_refused_by_its_bytes_not_its_name(world):
    before = _count(world, "submissions")
    r = world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/submissions",
                   data={"text": "x", "files": (io.BytesIO(b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64), "photo.jpg")},
                   content_type="multipart/form-data")
    assert r.status_code == 415 and r.json["error"]["code"] == "unsupported_type"
    assert _count(world, "submissions") == before


def test_oversize_upload_is_refused_with_a_clear_error(world, monkeypatch):
    app = world.client.application
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    before = _count(world, "submissions")
    r = world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/submissions",
                   data={"text": "x", "files": (io.BytesIO(PNG + b"\x00" * 4096), "big.png")}, content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"]["message"] == "上传的文件太大"
    assert _count(world, "submissions") == before


def test_file_over_the_configured_size_is_refused(world, monkeypatch):
    from edge_agent.spaces import submissions
    from edge_agent.spaces.errors import TooLargeError
    from edge_agent.spaces.people import get_person
    from edge_agent.spaces.assignments import get_assignment
    with pytest.raises(TooLargeError):
        submissions.submit_work(world.db, world.appliance.store, get_person(world.db, world.ids["student"]),
                                get_assignment(world.db, world.ids["assignment"]), "", [("a.png", PNG * 10)], max_bytes=100)


def test_teacher_grades_and_the_student_sees_score_and_comment(world):
    r = world.call("teacher", "POST", f"/api/v1/submissions/{world.ids['submission']}/grade", {"score": 95, "comment": "字写得很工整"})
    assert r.status_code == 200 and r.json["score"] == 95
    mine = world.call("student", "GET", f"/api/v1/submissions/{world.ids['submission']}").json
    assert mine["comment"] == "字写得很工整" and mine["files"][0]["mime"] == "image/png"
    photo = world.call("parent", "GET", f"/api/v1/submissions/{world.ids['submission']}/files/0")
    assert photo.status_code == 200 and photo.data == PNG
    assert world.call("teacher", "POST", f"/api/v1/submissions/{world.ids['submission']}/grade", {"score": 101}).status_code == 400
    assert len(_journal(world, "graded")) == 1 and len(_journal(world, "submitted")) == 1


def test_progress_moves_forward_and_is_journaled(world):
    url = "/api/v1/progress/vid-1"
    assert world.call("student", "PUT", url, {"state": "in_progress", "position": 30, "percent": 40}).json["percent"] == 40
    assert world.call("student", "PUT", url, {"state": "in_progress", "position": 10, "percent": 20}).json["percent"] == 40
    done = world.call("student", "PUT", url, {"state": "completed"}).json
    assert done["state"] == "completed" and done["percent"] == 100
    assert world.call("student", "PUT", url, {"state": "in_progress", "percent": 5}).json["state"] == "completed"
    verbs = [r[0] for r in world.db.execute("select verb from journal where object = 'resource:vid-1' order by seq")]
    assert verbs[:3] == ["viewed", "progressed", "progressed"] and verbs.count("completed") == 1
    assert world.call("student", "PUT", url, {"percent": 140}).status_code == 400
    assert world.call("student", "PUT", "/api/v1/progress/no-such", {"percent": 1}).status_code == 404


def test_class_progress_summary_at_a_glance(world):
    world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/answers", {"answers": {"q1": 1, "q2": True}})
    s = world.call("teacher", "GET", f"/api/v1/classes/{world.ids['class_a']}/progress").json
    rows = {r["name"]: r for r in s["students"]}
    assert rows["王小明"]["done"] == 1 and rows["王小明"]["average_score_pct"] == 50.0 and rows["王小明"]["last_active"]
    assert rows["李小红"]["done"] == 0 and rows["李小红"]["average_score_pct"] is None
    assert s["assignments"][0]["done"] == 1 and s["assignments"][0]["assigned"] == 2


def test_student_home_lists_assignments_with_status_and_unread_messages(world):
    home = world.call("student", "GET", "/api/v1/me/home").json
    (a,) = home["assignments"]
    assert a["id"] == world.ids["assignment"] and a["submissions"] == 1 and a["done"] is True
    assert home["unread_messages"] == 1 and home["classes"][0]["id"] == world.ids["class_a"]


def test_profile_correction_by_the_teacher_is_journaled(world):
    r = world.call("teacher", "PATCH", f"/api/v1/people/{world.ids['student']}", {"name": "王晓明"})
    assert r.status_code == 200 and r.json["name"] == "王晓明"
    assert world.call("teacher", "PATCH", f"/api/v1/people/{world.ids['student']}", {"gender": "?"}).status_code == 400
    assert any(obj == f"person:{world.ids['student']}" for _, obj in _journal(world, "admin"))


def test_every_act_lands_in_the_journal_with_its_actor(world):
    w = world
    w.client.post("/api/v1/login/student", json={"class_id": w.ids["class_a"], "person_id": w.ids["student"], "pin": w.pins["student"]},
                  headers={"X-Requested-With": "x"})
    w.call("student", "PUT", "/api/v1/progress/vid-1", {"state": "completed"})
    w.call("student", "POST", f"/api/v1/assignments/{w.ids['assignment']}/answers", {"answers": {"q1": 1}})
    w.call("teacher", "POST", f"/api/v1/submissions/{w.ids['submission']}/grade", {"score": 80})
    w.call("teacher", "POST", f"/api/v1/uploads/{w.ids['upload']}/offer")
    verbs = {r[0] for r in w.db.execute("select verb from journal")}
    assert {"logged_in", "viewed", "completed", "answered", "submitted", "graded", "uploaded", "shared", "messaged",
            "assigned", "admin"} <= verbs
    actors = {r[0] for r in w.db.execute("select actor from journal where verb in ('answered', 'submitted', 'completed')")}
    assert actors == {f"person:{w.ids['student']}"}
