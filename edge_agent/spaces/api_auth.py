"""Login, sessions, roster and people endpoints (``/api/v1/``).

* ``GET  session``                              who is logged in, and the CSRF token
* ``GET  login/classes``, ``GET login/classes/<id>/students``  the student login screens
* ``POST login/staff`` {number, password}, ``POST login/student`` {class_id, person_id, pin | pictures},
  ``POST login/card`` {token}
* ``POST logout``, ``POST logout/everywhere``, ``POST password`` {old, new}
* ``POST roster`` (CSV file or body; administrator)
* ``GET|PATCH people/<id>``, ``POST people/<id>/reset-pin`` {kind}, ``POST people/<id>/reset-password``
"""

from __future__ import annotations

import time

from flask import jsonify, request

from hub_sync.formats.roster_line import GENDERS, MAX_NAME_CHARS, norm
from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import BadRequestError
from edge_agent.journal import Journal
from edge_agent.spaces import const
from edge_agent.spaces.access import can_manage_student, can_see_student, is_admin, require
from edge_agent.spaces.api_common import blueprint, body, current_session, db, int_field, set_session_cookie, viewer
from edge_agent.spaces.client_address import client_address
from edge_agent.spaces.login import card_login, change_password, reset_student_secret, set_staff_password, staff_login, student_login
from edge_agent.spaces.people import all_classes, children_of, class_students, get_person
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.spaces.sessions import end_all_sessions, end_session

bp = blueprint("spaces_auth")


def _logged_in(token: str, csrf: str, person):
    from flask import g

    previous = g.get("space_session")
    if previous is not None:  # one person per device: the last login replaces the session
        end_session(db(), previous)
    response = jsonify({"person": person.public(), "csrf_token": csrf, "must_change": person.must_change})
    max_age = const.STAFF_ABSOLUTE_S if person.is_staff else const.STUDENT_SESSION_S
    set_session_cookie(response, token, max_age)
    return response


@bp.get("/api/v1/session")
def session():
    from flask import g

    s = g.get("space_session")
    if s is None:
        return jsonify({"logged_in": False})
    return jsonify({"logged_in": True, "person": s.person.public(), "csrf_token": s.csrf,
                    "must_change": s.person.must_change, "expires_at": s.expires_at})


@bp.get("/api/v1/login/classes")
def login_classes():
    return jsonify({"classes": all_classes(db())})


@bp.get("/api/v1/login/classes/<int:class_id>/students")
def login_students(class_id: int):
    from edge_agent.spaces.people import class_row

    class_row(db(), class_id)
    kinds = dict(db().execute("select p.id, p.secret_kind from class_members m join people p on p.id = m.person_id"
                              " where m.class_id = ? and m.role = 'student'", [class_id]).fetchall())
    return jsonify({"students": [{"id": s.id, "name": s.name, "login": kinds.get(s.id) or "none"}
                                 for s in class_students(db(), class_id)]})


@bp.post("/api/v1/login/staff")
def login_staff():
    data = body()
    token, csrf, person = staff_login(db(), str(data.get("number", "")), str(data.get("password", "")), client_address(request))
    return _logged_in(token, csrf, person)


@bp.post("/api/v1/login/student")
def login_student():
    data = body()
    pictures = data.get("pictures")
    if pictures is not None and not (isinstance(pictures, list) and all(isinstance(p, str) for p in pictures)):
        raise BadRequestError("pictures 应为图片名称列表", "pictures must be a list of picture names")
    token, csrf, person = student_login(db(), int_field(data, "class_id"), int_field(data, "person_id"), client_address(request),
                                        pin=str(data.get("pin", "")) or None, pictures=pictures)
    return _logged_in(token, csrf, person)


@bp.post("/api/v1/login/card")
def login_card():
    token, csrf, person = card_login(db(), str(body().get("token", "")), client_address(request))
    return _logged_in(token, csrf, person)


@bp.post("/api/v1/logout")
def logout():
    s = current_session()
    with transaction(db()):
        end_session(db(), s)
        Journal(db()).append(f"person:{s.person.id}", "logged_out", f"person:{s.person.id}", {})
    response = jsonify({"ok": True})
    response.delete_cookie(const.SESSION_COOKIE, path="/")
    return response


@bp.post("/api/v1/logout/everywhere")
def logout_everywhere():
    s = current_session()
    with transaction(db()):
        ended = end_all_sessions(db(), s.person.id)
        Journal(db()).append(f"person:{s.person.id}", "logged_out", f"person:{s.person.id}", {"everywhere": True, "sessions": ended})
    response = jsonify({"ok": True, "sessions_ended": ended})
    response.delete_cookie(const.SESSION_COOKIE, path="/")
    return response


@bp.post("/api/v1/password")
def password():
    me = viewer()
    require(me.is_staff or "parent" in me.roles)
    data = body()
    ended = change_password(db(), me, str(data.get("old", "")), str(data.get("new", "")), client_address(request),
                            keep_session=current_session().token_hash)
    return jsonify({"ok": True, "sessions_ended": ended})


@bp.post("/api/v1/roster")
def roster():
    me = viewer()
    require(is_admin(me))
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data:
        raise BadRequestError("没有收到名单文件", "no roster file received")
    return jsonify(import_roster(db(), data, actor=f"person:{me.id}"))


@bp.get("/api/v1/people/<int:person_id>")
def person(person_id: int):
    me = viewer()
    target = get_person(db(), person_id)
    require(me.id == person_id or (target.is_student and can_see_student(db(), me, person_id)) or is_admin(me))
    return jsonify(target.public())


@bp.patch("/api/v1/people/<int:person_id>")
def correct_person(person_id: int):
    """A teacher corrects a student's profile (merged with the county's, see merge.py)."""
    me = viewer()
    target = get_person(db(), person_id)
    require(target.is_student and can_manage_student(db(), me, person_id))
    data = body()
    changes = {}
    if "name" in data:
        name = norm(str(data["name"]))
        if not name or len(name) > MAX_NAME_CHARS:
            raise BadRequestError("姓名不能为空且不超过 40 字", "name must be 1-40 characters")
        changes["name"] = name
    if "gender" in data:
        if str(data["gender"]) not in GENDERS:
            raise BadRequestError("性别应为“男”或“女”", "gender must be 男 or 女")
        changes["gender"] = GENDERS[str(data["gender"])]
    if not changes:
        raise BadRequestError("没有可修改的字段（name, gender）", "nothing to change (name, gender)")
    with transaction(db()):
        for key, value in changes.items():
            db().execute(f"update people set {key} = ?, updated_at = ? where id = ?", [value, time.time(), person_id])
        Journal(db()).append(f"person:{me.id}", "admin", f"person:{person_id}", {"action": "profile", "changes": changes})
    return jsonify(get_person(db(), person_id).public())


@bp.post("/api/v1/people/<int:person_id>/reset-pin")
def reset_pin(person_id: int):
    me = viewer()
    target = get_person(db(), person_id)
    require(target.is_student and can_manage_student(db(), me, person_id))
    return jsonify(reset_student_secret(db(), me, target, str(body().get("kind", "pin"))))


@bp.post("/api/v1/people/<int:person_id>/reset-password")
def reset_password(person_id: int):
    """A staff member's password (administrator), or a parent's (administrator or a teacher of their child)."""
    me = viewer()
    target = get_person(db(), person_id)
    if target.is_staff:
        require(is_admin(me) and target.id != me.id)
    else:
        require("parent" in target.roles and (is_admin(me) or any(
            can_manage_student(db(), me, child) for child in children_of(db(), person_id))))
    new = set_staff_password(db(), person_id, actor=me)  # new password, old sessions gone, journaled: together
    return jsonify({"person_id": person_id, "password": new, "must_change": True})
