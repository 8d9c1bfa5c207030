"""The access matrix: every learning-space endpoint against every role.

An endpoint of a ``spaces_*`` blueprint missing from MATRIX fails the test, so a
new endpoint cannot skip its access check. Denied means 401 for anonymous and
403 for anyone logged in; allowed means a 2xx answer.
"""

from __future__ import annotations

import io

import pytest

from fixtures.common import PASSWORD
from fixtures.spaces import CLASS_A, PNG, ROLES, roster_csv, student_number

ANY = frozenset(ROLES)
LOGGED_IN = ANY - {"anonymous"}
STAFF = frozenset({"teacher", "other_teacher", "head_teacher", "admin", "technician"})
CLASS_A_STAFF = frozenset({"teacher", "head_teacher", "admin"})
S1_SEERS = CLASS_A_STAFF | {"student", "parent"}
TEACHERS = frozenset({"teacher", "other_teacher", "head_teacher"})
NOT_TECH = LOGGED_IN - {"technician"}

# (rule, method) -> (allowed roles, request factory(world, role) -> (url, json, data))
MATRIX = {
    ("/api/v1/session", "GET"): (ANY, lambda w, r: ("/api/v1/session", None, None)),
    ("/api/v1/login/classes", "GET"): (ANY, lambda w, r: ("/api/v1/login/classes", None, None)),
    ("/api/v1/login/classes/<int:class_id>/students", "GET"):
        (ANY, lambda w, r: (f"/api/v1/login/classes/{w.ids['class_a']}/students", None, None)),
    ("/api/v1/login/staff", "POST"): (ANY, lambda w, r: ("/api/v1/login/staff", {"number": "t001", "password": PASSWORD}, None)),
    ("/api/v1/login/student", "POST"): (ANY, lambda w, r: ("/api/v1/login/student", {
        "class_id": w.ids["class_a"], "person_id": w.ids["student"], "pin": w.pins["student"]}, None)),
    ("/api/v1/login/card", "POST"): (ANY, lambda w, r: ("/api/v1/login/card", {"token": w.cards[w.ids["student"]]}, None)),
    ("/api/v1/logout", "POST"): (LOGGED_IN, lambda w, r: ("/api/v1/logout", None, None)),
    ("/api/v1/logout/everywhere", "POST"): (LOGGED_IN, lambda w, r: ("/api/v1/logout/everywhere", None, None)),
    ("/api/v1/password", "POST"): (STAFF | {"parent", "other_parent"}, lambda w, r: ("/api/v1/password", {"old": PASSWORD, "new": "a-new-password-9"}, None)),
    ("/api/v1/roster", "POST"): (frozenset({"admin"}), lambda w, r: (
        "/api/v1/roster", None, {"file": (io.BytesIO(roster_csv([f"钱小花,{student_number(9)},,女,一年级,{CLASS_A},学生,"])), "r.csv")})),
    ("/api/v1/people/<int:person_id>", "GET"): (S1_SEERS, lambda w, r: (f"/api/v1/people/{w.ids['student']}", None, None)),
    ("/api/v1/people/<int:person_id>", "PATCH"): (CLASS_A_STAFF, lambda w, r: (f"/api/v1/people/{w.ids['student']}", {"name": "王晓明"}, None)),
    ("/api/v1/people/<int:person_id>/reset-pin", "POST"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/people/{w.ids['student']}/reset-pin", {"kind": "pin"}, None)),
    ("/api/v1/people/<int:person_id>/reset-password", "POST"):
        (frozenset({"admin"}), lambda w, r: (f"/api/v1/people/{w.ids['teacher']}/reset-password", None, None)),
    ("/api/v1/classes", "GET"): (TEACHERS | {"admin"}, lambda w, r: ("/api/v1/classes", None, None)),
    ("/api/v1/classes/<int:class_id>", "GET"): (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}", None, None)),
    ("/api/v1/classes/<int:class_id>", "PATCH"): (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}", {"name": CLASS_A}, None)),
    ("/api/v1/classes/<int:class_id>/progress", "GET"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}/progress", None, None)),
    ("/api/v1/classes/<int:class_id>/qr-cards", "POST"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}/qr-cards", None, None)),
    ("/api/v1/classes/<int:class_id>/assignments", "GET"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}/assignments", None, None)),
    ("/api/v1/classes/<int:class_id>/assignments", "POST"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}/assignments", {"resource_id": "vid-1"}, None)),
    ("/api/v1/classes/<int:class_id>/announcements", "POST"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/classes/{w.ids['class_a']}/announcements", {"body": "通知"}, None)),
    ("/api/v1/assignments/<int:assignment_id>", "GET"):
        (S1_SEERS, lambda w, r: (f"/api/v1/assignments/{w.ids['assignment']}", None, None)),
    ("/api/v1/assignments/<int:assignment_id>/answers", "POST"):
        (frozenset({"student"}), lambda w, r: (f"/api/v1/assignments/{w.ids['assignment']}/answers", {"answers": {"q1": 1}}, None)),
    ("/api/v1/assignments/<int:assignment_id>/submissions", "POST"):
        (frozenset({"student"}), lambda w, r: (f"/api/v1/assignments/{w.ids['assignment']}/submissions", {"text": "完成了"}, None)),
    ("/api/v1/assignments/<int:assignment_id>/submissions", "GET"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/assignments/{w.ids['assignment']}/submissions", None, None)),
    ("/api/v1/submissions/<int:submission_id>", "GET"):
        (S1_SEERS, lambda w, r: (f"/api/v1/submissions/{w.ids['submission']}", None, None)),
    ("/api/v1/submissions/<int:submission_id>/files/<int:index>", "GET"):
        (S1_SEERS, lambda w, r: (f"/api/v1/submissions/{w.ids['submission']}/files/0", None, None)),
    ("/api/v1/submissions/<int:submission_id>/grade", "POST"):
        (CLASS_A_STAFF, lambda w, r: (f"/api/v1/submissions/{w.ids['submission']}/grade", {"score": 90, "comment": "好"}, None)),
    ("/api/v1/me/home", "GET"): (frozenset({"student", "other_student"}), lambda w, r: ("/api/v1/me/home", None, None)),
    ("/api/v1/students/<int:student_id>/home", "GET"):
        (S1_SEERS, lambda w, r: (f"/api/v1/students/{w.ids['student']}/home", None, None)),
    ("/api/v1/progress/<resource_id>", "PUT"):
        (TEACHERS | {"admin", "student", "other_student"}, lambda w, r: ("/api/v1/progress/vid-1", {"percent": 40}, None)),
    ("/api/v1/messages", "GET"): (LOGGED_IN, lambda w, r: ("/api/v1/messages", None, None)),
    ("/api/v1/messages", "POST"): (frozenset({"teacher", "head_teacher"}), lambda w, r: (
        "/api/v1/messages", {"recipient_id": w.ids["parent"], "body": "孩子今天表现很好"}, None)),
    ("/api/v1/messages/<int:message_id>/read", "POST"):
        (frozenset({"student", "teacher", "head_teacher", "parent"}), lambda w, r: (f"/api/v1/messages/{w.ids['message']}/read", None, None)),
    ("/api/v1/uploads", "GET"): (TEACHERS, lambda w, r: ("/api/v1/uploads", None, None)),
    ("/api/v1/uploads", "POST"): (TEACHERS, lambda w, r: (
        "/api/v1/uploads", None, {"file": (io.BytesIO(PNG), "p.png"), "title": "图"})),
    ("/api/v1/uploads/<resource_id>/offer", "POST"):
        (frozenset({"teacher"}), lambda w, r: (f"/api/v1/uploads/{w.ids['upload']}/offer", None, None)),
    ("/api/v1/favourites", "GET"): (NOT_TECH, lambda w, r: ("/api/v1/favourites", None, None)),
    ("/api/v1/favourites/<resource_id>", "PUT"): (NOT_TECH, lambda w, r: ("/api/v1/favourites/vid-1", {"note": "好看"}, None)),
    ("/api/v1/favourites/<resource_id>", "DELETE"): (NOT_TECH, lambda w, r: ("/api/v1/favourites/vid-1", None, None)),
}


def _space_endpoints(app) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() if rule.endpoint.startswith("spaces_")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_space_endpoint_is_in_the_access_matrix(client):
    assert _space_endpoints(client.application) == set(MATRIX)


@pytest.mark.parametrize("key", sorted(MATRIX), ids=lambda k: f"{k[1]} {k[0]}")
def test_endpoint_allows_exactly_the_roles_in_the_matrix(world, key):
    allowed, make = MATRIX[key]
    for role in ROLES:
        url, json_body, data = make(world, role)
        kw = {"content_type": "multipart/form-data"} if data else {}
        r = world.call(role, key[1], url, json_body, data, **kw)
        if role in allowed:
            assert 200 <= r.status_code < 300, (role, key, r.status_code, r.get_data(as_text=True)[:300])
        else:
            expected = 401 if role == "anonymous" else 403
            assert r.status_code == expected, (role, key, r.status_code, r.get_data(as_text=True)[:300])


def test_student_changing_ids_in_urls_cannot_reach_another_students_work(world):
    other = world.ids["other_student"]
    sub = world.ids["submission"]
    for url in (f"/api/v1/submissions/{sub}", f"/api/v1/submissions/{sub}/files/0", f"/api/v1/students/{world.ids['student']}/home",
                f"/api/v1/people/{world.ids['student']}", f"/api/v1/assignments/{world.ids['assignment']}"):
        r = world.call("other_student", "GET", url)
        assert r.status_code == 403, url
        assert r.json["error"]["code"] == "forbidden"
    # and cannot hand in or answer for an assignment that is not theirs
    before = world.db.execute("select count(*) from answers").fetchone()[0]
    r = world.call("other_student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/answers", {"answers": {"q1": 1}})
    assert r.status_code == 403 and "没有布置给你" in r.json["error"]["message"]
    assert world.db.execute("select count(*) from answers").fetchone()[0] == before
    assert world.call("other_student", "GET", f"/api/v1/students/{other}/home").status_code == 200


def test_technician_reads_no_learning_data(world):
    for url in (f"/api/v1/classes/{world.ids['class_a']}/progress", f"/api/v1/students/{world.ids['student']}/home",
                f"/api/v1/submissions/{world.ids['submission']}", "/api/v1/classes", f"/api/v1/people/{world.ids['student']}"):
        assert world.call("technician", "GET", url).status_code == 403, url
    assert world.call("technician", "GET", "/api/v1/status").status_code == 200


UNSAFE = sorted(k for k in MATRIX if k[1] in ("POST", "PUT", "PATCH", "DELETE")
                and k[0] not in ("/api/v1/login/staff", "/api/v1/login/student", "/api/v1/login/card"))


@pytest.mark.parametrize("key", UNSAFE, ids=lambda k: f"{k[1]} {k[0]}")
def test_every_state_change_with_a_session_needs_the_csrf_token(world, key):
    allowed, make = MATRIX[key]
    role = sorted(allowed)[0]
    url, json_body, data = make(world, role)
    token, _ = world.session(role)
    journal_before = world.db.execute("select count(*) from journal").fetchone()[0]
    kw = {"content_type": "multipart/form-data"} if data else {}
    r = world.client.application.test_client(use_cookies=False).open(
        url, method=key[1], json=json_body, data=data,
        headers={"Cookie": f"se_session={token}", "X-Requested-With": "XMLHttpRequest"}, **kw)
    assert r.status_code == 403 and r.json["error"]["code"] == "csrf", (key, r.status_code)
    assert world.db.execute("select count(*) from journal").fetchone()[0] == journal_before
