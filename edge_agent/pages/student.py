"""The student's pages: log in (class -> name -> pictures or PIN, or a QR card),
home (assigned, due, continue), an assignment (view, exercise player, hand in
with the camera) and messages.

Data comes from the learning spaces' API (``spaces_bridge.api``); the page
scripts post answers and hand-ins through the outbox (``app.js``) so nothing is
lost when the Wi-Fi drops.
"""

from __future__ import annotations

import time

from flask import current_app, redirect, render_template, request
from flask_babel import lazy_gettext as _l

from edge_agent.const import MIB
from edge_agent.spaces.const import PICTURE_COUNT, PICTURES, PIN_DIGITS
from edge_agent.spaces.errors import AuthRequiredError, ForbiddenError
from edge_agent.pages.i18n import safe_next
from edge_agent.pages.library import KIND_LABELS, viewer_model, with_display_kind
from edge_agent.pages.spaces_bridge import api, space_blueprint, viewer

bp = space_blueprint("student", "/student/login")

PICTURE_LABELS = {"apple": _l("苹果"), "cat": _l("小猫"), "sun": _l("太阳"), "fish": _l("小鱼"), "tree": _l("大树"),
                  "star": _l("星星"), "car": _l("汽车"), "bird": _l("小鸟"), "flower": _l("花朵")}
AVATAR_COLOURS = ("#1f4e8c", "#1b6e3a", "#a3261b", "#6b3fa0", "#0e6170", "#8a5a00")


def _student():
    me = viewer()
    if me is None:
        raise AuthRequiredError("请先登录", "log in first")
    if not me.is_student:
        raise ForbiddenError("这是学生的页面，请用学生账号登录", "this page is for students; log in as a student")
    return me


@bp.get("/student/login")
def login_classes():
    classes = api("spaces_auth.login_classes")["classes"]
    return render_template("student/login_classes.html", classes=classes, expired=bool(request.args.get("expired")),
                           next=safe_next(request.args.get("next") or "/student"))


@bp.get("/student/login/<int:class_id>")
def login_names(class_id: int):
    classes = {c["id"]: c for c in api("spaces_auth.login_classes")["classes"]}
    students = api("spaces_auth.login_students", class_id=class_id)["students"]
    return render_template("student/login_names.html", klass=classes.get(class_id, {"id": class_id, "name": ""}),
                           students=students, colours=AVATAR_COLOURS)


@bp.get("/student/login/<int:class_id>/<int:person_id>")
def login_secret(class_id: int, person_id: int):
    students = {s["id"]: s for s in api("spaces_auth.login_students", class_id=class_id)["students"]}
    student = students.get(person_id)
    if student is None:
        return redirect(f"/student/login/{class_id}")
    return render_template("student/login_secret.html", class_id=class_id, student=student, pictures=PICTURES,
                           picture_labels=PICTURE_LABELS, picture_count=PICTURE_COUNT, pin_digits=PIN_DIGITS,
                           next=safe_next(request.args.get("next") or "/student"))


@bp.get("/login/card")
def login_card():
    """The URL printed in a QR card; the token is in the fragment and posted by the page."""
    return render_template("student/login_card.html")


@bp.get("/student")
def home():
    me = _student()
    home = api("spaces_teaching.my_home")
    now = time.time()
    assignments = with_display_kind(home["assignments"])
    todo = [a for a in assignments if not a["done"]]
    done = [a for a in assignments if a["done"]]
    due_soon = sorted((a for a in todo if a["due_at"]), key=lambda a: a["due_at"])
    started = [p for p in home["recent"] if p["state"] == "in_progress"]
    titles = _titles([p["resource_id"] for p in started])
    return render_template("student/home.html", me=me, home=home, todo=todo, done=done, due_soon=due_soon, now=now,
                           continue_items=[p | {"title": titles.get(p["resource_id"], "")} for p in started if p["resource_id"] in titles],
                           kind_labels=KIND_LABELS)


def _titles(ids: list[str]) -> dict[str, str]:
    """Titles of the resources a student started; one removed since is left out (nothing to continue)."""
    return current_app.extensions["appliance"].catalogue.titles(ids)


@bp.get("/student/assignments/<int:assignment_id>")
def assignment(assignment_id: int):
    _student()
    a = api("spaces_teaching.assignment", assignment_id=assignment_id)
    model = {}
    if a.get("resource_id"):
        model = viewer_model(current_app.extensions["appliance"].catalogue.get(a["resource_id"]))
    max_bytes = current_app.extensions["edge_config"].max_upload_mb * MIB
    return render_template("student/assignment.html", a=a, exercise=None, max_upload_bytes=max_bytes, **model)


@bp.get("/student/messages")
def messages():
    me = _student()
    data = api("spaces_social.messages")
    return render_template("student/messages.html", me=me, messages=data["messages"])
