"""Wire formats of the pupils' interaction with a live lesson's central teacher.

Pure: no I/O.

**Interaction** (pupil to central teacher): one ``live-interaction`` DSSE envelope per message,
signed by the device key when the pupil sends it, payload::

    {"device": ID, "seq": N, "lesson": ID, "kind": "hand" | "question" | "answer",
     "pupil": "name", "person": N, "text": "...", "poll": "p-..", "option": 0, "at": <POSIX time>}

``seq`` counts 1, 2, 3 ... per device: the hub stores each once, in order. ``person`` is the
pupil's number in the appliance's own database (no personal data): two pupils of one name are
two people, and a pupil's last poll answer replaces their earlier ones.

**Live state** (hub to appliance, the fast path while a lesson is on): a ``live-state``
envelope signed by the hub's online key, payload ``{"lesson", "poll": None | {"id",
"question", "options"}, "hub_time"}``.
"""

from __future__ import annotations

import math
from typing import Any

from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import content_type
from hub_sync.formats.live_timetable import MAX_FIELD_CHARS, lesson_id, text_field

INTERACTION_KIND = "live-interaction"        # envelope types
STATE_KIND = "live-state"
STATE_CONTENT_TYPE = content_type(STATE_KIND)
INTERACTION_KINDS = ("hand", "question", "answer")
QUESTION_MAX_CHARS = 140                     # a question is a line, not a letter: bytes on a thin link
POLL_MAX_OPTIONS = 6
POLL_OPTION_MAX_CHARS = 40

def check_poll(question: Any, options: Any) -> dict:
    """A quick poll's question and 2..6 short options; raises FormatError."""
    q = text_field({"question": question}, "question", QUESTION_MAX_CHARS, required=True)
    if not isinstance(options, list) or not 2 <= len(options) <= POLL_MAX_OPTIONS:
        raise FormatError(f"投票需要 2 到 {POLL_MAX_OPTIONS} 个选项", f"a poll needs 2 to {POLL_MAX_OPTIONS} options")
    opts = [text_field({"option": o}, "option", POLL_OPTION_MAX_CHARS, required=True) for o in options]
    return {"question": q, "options": opts}


def check_interaction(payload: Any) -> dict:
    """A pupil's message, checked (kind, bounded text, a poll answer's option); raises FormatError."""
    if not isinstance(payload, dict):
        raise FormatError("互动消息格式无效", "interaction message is malformed")
    kind = payload.get("kind")
    if kind not in INTERACTION_KINDS:
        raise FormatError(f"未知的互动类型 {kind}", f"unknown interaction kind {kind!r}")
    seq, at = payload.get("seq"), payload.get("at")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise FormatError("互动消息序号无效", "interaction seq must be a positive whole number")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
        raise FormatError("互动消息时间无效", "interaction time is invalid")
    person = payload.get("person", 0)
    if isinstance(person, bool) or not isinstance(person, int) or person < 0:
        raise FormatError("互动消息的学生编号无效", "interaction person must be a whole number")
    out = {"device": text_field(payload, "device", 64, required=True), "person": person, "seq": seq, "lesson": lesson_id(payload.get("lesson")),
           "kind": kind, "pupil": text_field(payload, "pupil", MAX_FIELD_CHARS), "at": float(at)}
    if kind == "question":
        out["text"] = text_field(payload, "text", QUESTION_MAX_CHARS, required=True)
    if kind == "answer":
        option = payload.get("option")
        if isinstance(option, bool) or not isinstance(option, int) or not 0 <= option < POLL_MAX_OPTIONS:
            raise FormatError("投票选项无效", "poll option is invalid")
        out["poll"] = text_field(payload, "poll", 64, required=True)
        out["option"] = option
    return out


def check_state(payload: Any, lesson: str) -> dict:
    """A ``live-state`` payload for ``lesson``; raises FormatError."""
    if not isinstance(payload, dict) or payload.get("lesson") != lesson:
        raise FormatError("直播状态不是本节课的", "live state is for another lesson")
    poll = payload.get("poll")
    if poll is not None:
        if not isinstance(poll, dict):
            raise FormatError("直播状态的投票无效", "live state poll is malformed")
        poll = {"id": text_field(poll, "id", 64, required=True), **check_poll(poll.get("question"), poll.get("options"))}
    hub_time = payload.get("hub_time")
    if isinstance(hub_time, bool) or not isinstance(hub_time, (int, float)) or not math.isfinite(hub_time):
        raise FormatError("直播状态的时间无效", "live state hub_time is invalid")
    return {"lesson": lesson, "poll": poll, "hub_time": float(hub_time)}
