"""Teaching endpoints (``/api/v1/``): classes, assignments, answers, submissions,
progress, the class summary and the student's home.

* ``GET classes``, ``GET|PATCH classes/<id>``, ``GET classes/<id>/progress``, ``POST classes/<id>/qr-cards[?format=html]``
* ``GET|POST classes/<id>/assignments``, ``GET assignments/<id>``
* ``POST assignments/<id>/answers`` {answers}, ``GET|POST assignments/<id>/submissions``
* ``GET submissions/<id>``, ``GET submissions/<id>/files/<n>``, ``POST submissions/<id>/grade`` {score, comment}
* ``GET me/home``, ``GET students/<id>/home``, ``PUT progress/<resource_id>``
"""

from __future__ import annotations

import time

from flask import Response, current_app, jsonify, request

from hub_sync.formats.roster_line import MAX_NAME_CHARS, norm
from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.library.file_response import file_response
from edge_agent.journal import Journal
from edge_agent.spaces.access import TEACHING, can_manage_class, can_see_student, is_admin, require, require_roles
from edge_agent.spaces.answers import attempts_of, exercise_for, submit_answers
from edge_agent.spaces.api_common import appliance, blueprint, body, db, viewer
from edge_agent.spaces.assignments import can_see_assignment, class_assignments, create_assignment, get_assignment, is_assigned_to
from edge_agent.spaces.cards import cards_html, cards_json
from edge_agent.const import MIB
from edge_agent.spaces.class_cache import ClassCache
from edge_agent.spaces.exercises import answer_key, public_questions
from edge_agent.spaces.login import issue_cards
from edge_agent.spaces.people import all_classes, class_row, class_students, class_teachers, classes_of, get_person
from edge_agent.spaces.progress import record_progress
from edge_agent.spaces import const
from edge_agent.spaces.submissions import get_submission, grade_submission, submissions_for, submit_work
from edge_agent.spaces.upload_spool import Spooled, spool
from edge_agent.spaces.summary import class_progress, student_home

bp = blueprint("spaces_teaching")


@bp.get("/api/v1/classes")
def classes():
    me = viewer()
    require(is_admin(me) or bool(me.roles & TEACHING))
    mine = None if is_admin(me) else set(classes_of(db(), me.id, "teacher"))
    return jsonify({"classes": [c for c in all_classes(db()) if mine is None or c["id"] in mine]})


@bp.get("/api/v1/classes/<int:class_id>")
def klass(class_id: int):
    me = viewer()
    info = class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    return jsonify(info | {"students": [s.public() for s in class_students(db(), class_id)],
                           "teachers": [t.public() for t in class_teachers(db(), class_id)]})


@bp.patch("/api/v1/classes/<int:class_id>")
def rename_class(class_id: int):
    me = viewer()
    class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    name = norm(str(body().get("name", "")))
    if not name or len(name) > MAX_NAME_CHARS:
        raise BadRequestError("班级名称不能为空且不超过 40 字", "class name must be 1-40 characters")
    with transaction(db()):
        if db().execute("select 1 from classes where name = ? and id != ?", [name, class_id]).fetchone():
            raise BadRequestError(f"已有名为“{name}”的班级", f"a class named {name!r} already exists")
        db().execute("update classes set name = ?, updated_at = ? where id = ?", [name, time.time(), class_id])
        Journal(db()).append(f"person:{me.id}", "admin", f"class:{class_id}", {"action": "rename", "name": name})
    return jsonify(class_row(db(), class_id))


@bp.record_once
def _summary_cache(state) -> None:
    state.app.extensions.setdefault("class_summaries", ClassCache())


@bp.get("/api/v1/classes/<int:class_id>/progress")
def progress_summary(class_id: int):
    me = viewer()
    class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    # the JSON body itself is cached per class version (class_cache.py): a teacher's
    # re-read while nothing changed in the class costs one indexed read
    body = current_app.extensions["class_summaries"].get(
        db(), class_id, lambda: jsonify(class_progress(db(), class_id)).get_data())
    return current_app.response_class(body, mimetype=current_app.json.mimetype)


@bp.post("/api/v1/classes/<int:class_id>/qr-cards")
def qr_cards(class_id: int):
    """New login cards for the class (POST: printing revokes the previous cards)."""
    me = viewer()
    info = class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    students = class_students(db(), class_id)
    cards = cards_json(request.host_url, students, issue_cards(db(), me, students))
    if request.args.get("format") == "html":
        return Response(cards_html(info["name"], cards), mimetype="text/html")
    return jsonify({"class": info, "cards": cards})


@bp.get("/api/v1/classes/<int:class_id>/assignments")
def list_assignments(class_id: int):
    me = viewer()
    class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    return jsonify({"assignments": class_assignments(db(), class_id)})


@bp.post("/api/v1/classes/<int:class_id>/assignments")
def new_assignment(class_id: int):
    me = viewer()
    class_row(db(), class_id)
    require(can_manage_class(db(), me, class_id))
    return jsonify(create_assignment(db(), me, class_id, body())), 201


def _visible_assignment(assignment_id: int) -> dict:
    me = viewer()
    a = get_assignment(db(), assignment_id)
    require(can_see_assignment(db(), me, a))
    return a


@bp.get("/api/v1/assignments/<int:assignment_id>")
def assignment(assignment_id: int):
    me = viewer()
    a = _visible_assignment(assignment_id)
    if a["kind"] == "exercise":
        # students (and parents) get the questions only; the class's teachers also the key
        ex = exercise_for(db(), appliance().store, a)
        a["questions"] = public_questions(ex)
        if can_manage_class(db(), me, a["class_id"]):
            a["answer_key"] = answer_key(ex)
    if me.is_student:
        a["attempts"] = attempts_of(db(), assignment_id, me.id)
        a["submissions"] = submissions_for(db(), assignment_id, me.id)
    return jsonify(a)


def _own_assignment(assignment_id: int) -> tuple:
    me = viewer()
    a = get_assignment(db(), assignment_id)
    if not (me.is_student and is_assigned_to(db(), a, me.id)):
        from edge_agent.spaces.errors import ForbiddenError
        raise ForbiddenError("这项作业没有布置给你，不能作答或提交", "this assignment is not assigned to you; you cannot answer or hand it in")
    return me, a


@bp.post("/api/v1/assignments/<int:assignment_id>/answers")
def answer(assignment_id: int):
    me, a = _own_assignment(assignment_id)
    return jsonify(submit_answers(db(), appliance().store, me, a, body().get("answers"))), 201


@bp.post("/api/v1/assignments/<int:assignment_id>/submissions")
def hand_in(assignment_id: int):
    me, a = _own_assignment(assignment_id)
    max_bytes = appliance().config.max_upload_mb * MIB
    quota = appliance().config.student_quota_mb * MIB
    store = appliance().store
    files: list[tuple[str, Spooled]] = []
    try:
        if request.files:
            text = request.form.get("text", "")
            parts = request.files.getlist("files")
            if len(parts) > const.SUBMISSION_MAX_FILES:  # before spooling any of them
                raise BadRequestError(f"最多附 {const.SUBMISSION_MAX_FILES} 个文件",
                                      f"at most {const.SUBMISSION_MAX_FILES} files")
            for f in parts:  # each to disk while hashed, never whole in memory
                files.append((f.filename or "file", spool(store, f.filename or "file", f.stream, max_bytes)))
        else:
            text = str(body().get("text", ""))
        return jsonify(submit_work(db(), store, me, a, text, files, max_bytes, quota)), 201
    finally:
        for _, upload in files:
            upload.discard()


@bp.get("/api/v1/assignments/<int:assignment_id>/submissions")
def submissions(assignment_id: int):
    me = viewer()
    a = get_assignment(db(), assignment_id)
    require(can_manage_class(db(), me, a["class_id"]))
    return jsonify({"submissions": submissions_for(db(), assignment_id)})


def _visible_submission(submission_id: int) -> dict:
    me = viewer()
    s = get_submission(db(), submission_id)
    require(can_see_student(db(), me, s["person_id"]) and (me.id == s["person_id"] or "parent" in me.roles
            or can_manage_class(db(), me, get_assignment(db(), s["assignment_id"])["class_id"])))
    return s


@bp.get("/api/v1/submissions/<int:submission_id>")
def submission(submission_id: int):
    return jsonify(_visible_submission(submission_id))


@bp.get("/api/v1/submissions/<int:submission_id>/files/<int:index>")
def submission_file(submission_id: int, index: int):
    s = _visible_submission(submission_id)
    if index >= len(s["files"]):
        raise NotFoundError("没有这个附件", "no such attachment")
    f = s["files"][index]
    return file_response(appliance().store.path_for(f["sha256"]), f["mime"], f["sha256"], immutable=False, private=True)


@bp.post("/api/v1/submissions/<int:submission_id>/grade")
def grade(submission_id: int):
    me = viewer()
    s = get_submission(db(), submission_id)
    require(can_manage_class(db(), me, get_assignment(db(), s["assignment_id"])["class_id"]))
    return jsonify(grade_submission(db(), me, s, body()))


@bp.get("/api/v1/me/home")
def my_home():
    me = viewer()
    require(me.is_student)
    return jsonify(student_home(db(), me))


@bp.get("/api/v1/students/<int:student_id>/home")
def student_home_for(student_id: int):
    me = viewer()
    target = get_person(db(), student_id)
    require(target.is_student and can_see_student(db(), me, student_id))
    return jsonify(student_home(db(), target))


@bp.put("/api/v1/progress/<resource_id>")
def progress(resource_id: str):
    me = viewer()
    require_roles(me, "student", "teacher", "head_teacher", "admin")
    return jsonify(record_progress(db(), me, resource_id, body()))
