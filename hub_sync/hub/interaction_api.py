"""The hub's HTTP side of a live lesson's way back, and the central teacher's page.

    POST /api/v1/hub/live/messages        body {"device": ID, "envelopes": [str, ...]}: ``live-interaction``
                                          envelopes signed by that device (``LiveInteraction.receive``);
                                          200 {"held": N}: the highest seq stored, which acknowledges
                                          everything up to it; 403 unknown device or bad signature,
                                          400 malformed; either stores nothing.
    GET  /api/v1/hub/live/<L>/state       a ``live-state`` envelope signed by the online key: the open
                                          poll and the hub's time (the appliances' fast path).
    GET  /live/<L>/teacher                the central teacher's page (a token form until signed in)
    POST /live/<L>/teacher                form field ``token``: signs in (cookie ``live_teacher_<L>``)
    GET  /api/v1/hub/live/<L>/feed        the teacher's view: hands, questions, poll counts per teaching point
    POST /api/v1/hub/live/<L>/polls       {"question", "options"}: start a poll; ``/polls/close`` ends it

The teacher's routes need the lesson's token (the sign-in cookie, or the header ``X-Live-Token``),
or a county console session of a bureau admin (``hub_sync.hub.console``); their POSTs also need
``X-Requested-With`` (a cross-site form cannot set it).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request

from hub_sync.core.errors import FormatError, Problem
from hub_sync.formats.envelope import canonical_json, seal
from hub_sync.formats.live_interaction import POLL_MAX_OPTIONS, QUESTION_MAX_CHARS, STATE_CONTENT_TYPE, STATE_KIND
from hub_sync.formats.live_timetable import lesson_id
from hub_sync.hub.console.auth import allowed as console_allowed
from hub_sync.hub.live_interaction import LiveInteraction
from hub_sync.hub.live_timetable import LiveTimetable
from hub_sync.hub.usage_api import _signer as online_signer

bp = Blueprint("hub_live_interaction", __name__, template_folder="templates")
COOKIE = "live_teacher_"  # + the lesson id: one sign-in per lesson
TOKEN_HEADER = "X-Live-Token"
COOKIE_MAX_AGE_S = 12 * 3600


class TeacherOnlyError(Problem):
    code = "live_teacher"
    http_status = 403


def _hub():
    return current_app.extensions["hub"]


def _signed_in(live: LiveInteraction, lesson: str) -> bool:
    """The lesson's token (header or the sign-in cookie), or a county console session of a bureau admin."""
    token = request.headers.get(TOKEN_HEADER) or request.cookies.get(COOKIE + lesson, "")
    return live.teacher_may(lesson, token) or console_allowed()


def _teacher(lesson: str) -> LiveInteraction:
    live = LiveInteraction(_hub().db)
    if not _signed_in(live, lesson):
        raise TeacherOnlyError("需要本节课的教师令牌（school-edge hub live teacher-token）",
                               "this needs the lesson's teacher token (school-edge hub live teacher-token)")
    if request.method == "POST" and not request.headers.get("X-Requested-With"):
        raise TeacherOnlyError("请求缺少 X-Requested-With 头", "request lacks the X-Requested-With header")
    return live


@bp.post("/api/v1/hub/live/messages")
def messages():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise FormatError("请求内容应为 JSON 对象", "request body must be a JSON object")
    held = LiveInteraction(_hub().db).receive(str(data.get("device", "")), data.get("envelopes"))
    return jsonify({"held": held})


@bp.get("/api/v1/hub/live/<lesson>/state")
def state(lesson: str):
    lesson = lesson_id(lesson)
    payload = {"lesson": lesson, "poll": LiveInteraction(_hub().db).open_poll(lesson), "hub_time": time.time()}
    response = Response(seal(STATE_KIND, canonical_json(payload), online_signer()), content_type=STATE_CONTENT_TYPE)
    response.cache_control.no_store = True
    return response


@bp.get("/live/<lesson>/teacher")
def teacher_page(lesson: str):
    lesson = lesson_id(lesson)
    signed_in = _signed_in(LiveInteraction(_hub().db), lesson)
    return render_template("live_teacher.html", lesson=lesson, signed_in=signed_in, refused=bool(request.args.get("refused")),
                           question_max=QUESTION_MAX_CHARS, options_max=POLL_MAX_OPTIONS)


@bp.post("/live/<lesson>/teacher")
def teacher_sign_in(lesson: str):
    lesson = lesson_id(lesson)
    token = request.form.get("token", "").strip()
    if not LiveInteraction(_hub().db).teacher_may(lesson, token):
        return redirect(f"/live/{lesson}/teacher?refused=1", 303)
    response = redirect(f"/live/{lesson}/teacher", 303)
    response.set_cookie(COOKIE + lesson, token, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/")
    return response


@bp.get("/api/v1/hub/live/<lesson>/feed")
def feed(lesson: str):
    lesson = lesson_id(lesson)
    live = _teacher(lesson)
    return jsonify(live.feed(lesson, LiveTimetable(_hub().db).schools_of(lesson)))


@bp.post("/api/v1/hub/live/<lesson>/polls")
def start_poll(lesson: str):
    lesson = lesson_id(lesson)
    live = _teacher(lesson)
    data = request.get_json(silent=True) or {}
    return jsonify(live.start_poll(lesson, data.get("question"), data.get("options"))), 201


@bp.post("/api/v1/hub/live/<lesson>/polls/close")
def close_poll(lesson: str):
    lesson = lesson_id(lesson)
    _teacher(lesson).close_poll(lesson)
    return jsonify({"ok": True})
