"""Wire format of a live lesson's (专递课堂) timetable, one teaching point's.

Pure: no I/O. The hub checks what it queues, the appliance what it applies.

The downlink message ``live_timetable`` carries ``{"lessons": [entry, ...], "issued_at": <hub
POSIX time>}``: the whole timetable of one teaching point, so applying it twice changes nothing.
An entry::

    {"lesson": "math-0301", "start": "2026-03-01T01:00:00+00:00", "minutes": 40,
     "subject": "数学", "grade": "三年级", "teacher": "王老师", "title": "分数的初步认识"}
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

from hub_sync.core.errors import FormatError

TIMETABLE_MESSAGE = "live_timetable"         # the downlink message kind
LESSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_LESSON_MINUTES = 300
MAX_FIELD_CHARS = 60                         # subject, grade, teacher, a pupil's name
MAX_TITLE_CHARS = 120
MAX_TIMETABLE_LESSONS = 500                  # one teaching point's term, with room

def lesson_id(value: Any) -> str:
    """A checked lesson id (letters, digits, ``-_.``; at most 64): it names a folder and a URL."""
    text = str(value or "").strip()
    if not LESSON_ID.match(text):
        raise FormatError(f"课程编号“{text}”无效：只能用字母、数字和 -_.，最多 64 个字符",
                          f"lesson id {text!r} is invalid: letters, digits and -_. only, at most 64 characters")
    return text


def text_field(entry: dict, name: str, limit: int, required: bool = False) -> str:
    """A text field of ``entry``, stripped and bounded; raises FormatError."""
    value = entry.get(name, "")
    if not isinstance(value, str):
        raise FormatError(f"{name} 应为文字", f"{name} must be text")
    value = value.strip()
    if required and not value:
        raise FormatError(f"缺少 {name}", f"{name} is missing")
    if len(value) > limit:
        raise FormatError(f"{name} 超过 {limit} 个字", f"{name} is longer than {limit} characters")
    return value


def parse_start(value: Any) -> datetime:
    """An ISO 8601 start time with its time zone (a lesson's moment must not depend on a device's zone)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        raise FormatError(f"开始时间“{value}”不是 ISO 8601 时间", f"start {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise FormatError(f"开始时间“{value}”缺少时区（例如 +08:00）", f"start {value!r} lacks a time zone (e.g. +08:00)")
    return moment.astimezone(timezone.utc)


def check_entry(entry: Any) -> dict:
    """One timetable entry, checked and normalised (start in UTC); raises FormatError."""
    if not isinstance(entry, dict):
        raise FormatError("课表条目应为对象", "a timetable entry must be an object")
    minutes = entry.get("minutes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_LESSON_MINUTES:
        raise FormatError(f"课时长度应为 1 到 {MAX_LESSON_MINUTES} 分钟", f"minutes must be 1 to {MAX_LESSON_MINUTES}")
    return {"lesson": lesson_id(entry.get("lesson")), "start": parse_start(entry.get("start")).isoformat(),
            "minutes": minutes, "subject": text_field(entry, "subject", MAX_FIELD_CHARS, required=True),
            "grade": text_field(entry, "grade", MAX_FIELD_CHARS), "teacher": text_field(entry, "teacher", MAX_FIELD_CHARS),
            "title": text_field(entry, "title", MAX_TITLE_CHARS)}


def check_timetable(payload: Any) -> dict:
    """A ``live_timetable`` message's payload, every entry checked; raises FormatError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("lessons"), list):
        raise FormatError("课表消息格式无效", "live timetable message is malformed")
    if len(payload["lessons"]) > MAX_TIMETABLE_LESSONS:
        raise FormatError(f"课表超过 {MAX_TIMETABLE_LESSONS} 节", f"timetable has more than {MAX_TIMETABLE_LESSONS} lessons")
    issued = payload.get("issued_at", 0)
    if isinstance(issued, bool) or not isinstance(issued, (int, float)) or not math.isfinite(issued):
        raise FormatError("课表消息的时间无效", "live timetable issued_at is invalid")
    lessons = sorted((check_entry(e) for e in payload["lessons"]), key=lambda e: (e["start"], e["lesson"]))
    return {"lessons": lessons, "issued_at": float(issued)}

