"""The teacher's pages (and the staff login): classes, class progress with charts,
assigning, the grading queue, messages to the class and to parents, own uploads
with their review status, QR login cards.

Everything is read through the learning spaces' API (``spaces_bridge.api``); the
page scripts send changes to ``/api/v1/`` with the session's CSRF token.
"""

from __future__ import annotations

from flask import current_app, render_template, request

from edge_agent.const import MIB
from edge_agent.library.catalogue import KINDS
from edge_agent.spaces.access import TEACHING
from edge_agent.spaces.answers import attempts_of, exercise_for
from edge_agent.spaces.errors import AuthRequiredError, ForbiddenError
from edge_agent.spaces.exercises import grade
from edge_agent.spaces.people import parents_of, people
from edge_agent.pages.i18n import safe_next
from edge_agent.pages.library import FILTER_LABELS, KIND_LABELS, with_display_kind
from edge_agent.pages.spaces_bridge import api, space_blueprint, viewer

bp = space_blueprint("teacher", "/login")
STUCK_BELOW_PCT = 60


def _teacher():
    me = viewer()
    if me is None:
        raise AuthRequiredError("请先登录", "log in first")
    if not me.roles & TEACHING and "admin" not in me.roles:
        raise ForbiddenError("这是老师的页面，请用教师账号登录", "this page is for teachers; log in as a teacher")
    return me


def appliance():
    return current_app.extensions["appliance"]


@bp.get("/login")
def login():
    """Staff login (teachers, administrators, technicians)."""
    target = request.args.get("next")
    return render_template("teacher/login.html", next=safe_next(target) if target else "",
                           expired=bool(request.args.get("expired")))


@bp.get("/teacher")
def classes():
    _teacher()
    return render_template("teacher/classes.html", classes=api("spaces_teaching.classes")["classes"])


@bp.get("/teacher/classes/<int:class_id>")
def klass(class_id: int):
    _teacher()
    info = api("spaces_teaching.klass", class_id=class_id)
    progress = api("spaces_teaching.progress_summary", class_id=class_id)
    progress["assignments"] = with_display_kind(progress["assignments"])
    names = {s["id"]: s["name"] for s in info["students"]}
    stuck = [s for s in progress["students"]
             if s["assigned"] and (s["done"] < s["assigned"] and s["average_score_pct"] is not None
                                   and s["average_score_pct"] < STUCK_BELOW_PCT)]
    not_started = [s for s in progress["students"] if s["assigned"] and s["done"] == 0]
    accuracy = {a["id"]: question_accuracy(a["id"], names) for a in progress["assignments"] if a["kind"] == "exercise"}
    parents = []
    for s in info["students"]:
        for p in people(appliance().db, parents_of(appliance().db, s["id"])):
            parents.append({"id": p.id, "name": p.name, "child": s["name"]})
    return render_template("teacher/class.html", info=info, progress=progress, stuck=stuck, not_started=not_started,
                           accuracy=accuracy, parents=parents, kind_labels=KIND_LABELS)


def question_accuracy(assignment_id: int, names: dict[int, str]) -> list[dict]:
    """Per question: how many students answered it right in their latest attempt (graded by the spaces' grader)."""
    a = api("spaces_teaching.assignment", assignment_id=assignment_id)
    ex = exercise_for(appliance().db, appliance().store, a)
    right = {q["id"]: 0 for q in ex["questions"]}
    answered = 0
    for student_id in names:
        attempts = attempts_of(appliance().db, assignment_id, student_id)
        if not attempts:
            continue
        answered += 1
        for qid, ok in grade(ex, attempts[-1]["answers"])["results"].items():
            right[qid] += int(ok)
    return [{"id": q["id"], "prompt": q["prompt"], "right": right[q["id"]], "answered": answered,
             "pct": round(100 * right[q["id"]] / answered) if answered else None} for q in ex["questions"]]


@bp.get("/teacher/assign/<resource_id>")
def assign(resource_id: str):
    _teacher()
    resource = appliance().catalogue.get(resource_id)
    return render_template("teacher/assign.html", resource=resource, classes=api("spaces_teaching.classes")["classes"],
                           kind_labels=KIND_LABELS)


@bp.get("/teacher/grading")
def grading():
    _teacher()
    queue, done = [], []
    for c in api("spaces_teaching.classes")["classes"]:
        students = {s["id"]: s["name"] for s in api("spaces_teaching.klass", class_id=c["id"])["students"]}
        for a in api("spaces_teaching.list_assignments", class_id=c["id"])["assignments"]:
            for s in api("spaces_teaching.submissions", assignment_id=a["id"])["submissions"]:
                item = s | {"student": students.get(s["person_id"], "?"), "assignment": a["title"], "class": c["name"]}
                (done if s["score"] is not None else queue).append(item)
    return render_template("teacher/grading.html", queue=queue, done=done[-20:])


@bp.get("/teacher/uploads")
def uploads():
    _teacher()
    return render_template("teacher/uploads.html", resources=api("spaces_social.uploads")["resources"],
                           kinds=KINDS, kind_labels=KIND_LABELS, filter_labels=FILTER_LABELS,
                           max_upload_bytes=current_app.extensions["edge_config"].max_upload_mb * MIB)


@bp.get("/teacher/messages")
def messages():
    _teacher()
    return render_template("teacher/messages.html", messages=api("spaces_social.messages")["messages"])
