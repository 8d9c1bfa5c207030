"""The appliance's JSON API for live lessons' timetable and the pupils' way back.

    GET  /api/v1/live/schedule           what is on now and next (anyone on the LAN: the classroom
                                         screen is not logged in); for a logged-in pupil also the
                                         current lesson's open poll and their own messages
    POST /api/v1/live/<L>/hand           raise a hand                         (logged-in pupils)
    POST /api/v1/live/<L>/question       {"text"}: a short question (at most 140 characters)
    POST /api/v1/live/<L>/answer         {"poll", "option"}: answer the open poll

A POST answers 201 {"seq", "state": "queued"} as soon as the signed message is queued here;
the live link (``edge_agent.sync.live_link``) delivers it, in order, when the link allows.
The learning spaces' session and CSRF rules apply (``edge_agent.spaces.api_common``).
"""

from __future__ import annotations

from flask import g, jsonify

from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.spaces.access import require
from edge_agent.spaces.api_common import appliance, blueprint, body, db, viewer
from edge_agent.sync.live_outbox import current_poll, mine, pending_count, queue
from edge_agent.sync.live_timetable import current_schedule, lesson_json

bp = blueprint("live_interaction")


def _pupil():
    me = viewer()
    require(me.is_student)
    return me


def _lesson(lesson: str) -> str:
    if lesson_json(db(), lesson) is None:
        raise NotFoundError(f"课表里没有课程 {lesson}", f"no lesson {lesson} in the timetable")
    return lesson


@bp.get("/api/v1/live/schedule")
def schedule():
    answer = current_schedule(db(), appliance().clock).to_json()
    answer["pending_messages"] = pending_count(db())
    session = g.get("space_session")
    current = answer["current"]
    if session is not None and session.person.is_student and current:
        answer["poll"] = current_poll(db(), current["lesson"])
        answer["mine"] = mine(db(), session.person.id, current["lesson"])
    return jsonify(answer)


@bp.post("/api/v1/live/<lesson>/hand")
def hand(lesson: str):
    return jsonify(queue(appliance(), _pupil(), _lesson(lesson), "hand")), 201


@bp.post("/api/v1/live/<lesson>/question")
def question(lesson: str):
    me = _pupil()
    text = body().get("text")
    if not isinstance(text, str):
        raise BadRequestError("请写下问题", "write a question")
    return jsonify(queue(appliance(), me, _lesson(lesson), "question", text=text)), 201


@bp.post("/api/v1/live/<lesson>/answer")
def answer(lesson: str):
    me = _pupil()
    data = body()
    poll = current_poll(db(), _lesson(lesson))
    if poll is None or data.get("poll") != poll["id"]:
        raise BadRequestError("这个投票已经结束", "this poll is over")
    option = data.get("option")
    if isinstance(option, bool) or not isinstance(option, int) or not 0 <= option < len(poll["options"]):
        raise BadRequestError("请选择一个选项", "choose one of the options")
    return jsonify(queue(appliance(), me, lesson, "answer", poll=poll["id"], option=option)), 201
