"""The county's live-lesson (专递课堂) timetable, per teaching point, and how it goes down.

The county (or the central school, through the county's CLI) schedules a lesson for a
school: ``schedule`` stores the entry and queues, in the same transaction, a downlink
message ``live_timetable`` carrying that school's whole timetable (lessons that ended
more than ``KEEP_ENDED_DAYS`` ago left out). Each message replaces the one before on the
appliance, so a repeat or a lost intermediate message changes nothing; messages are
signed, sealed and applied in order like every downlink message
(``hub_sync.hub.downlink``).
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

from hub_sync.core.errors import DeviceError, FormatError
from hub_sync.formats.live_timetable import TIMETABLE_MESSAGE, check_entry, check_timetable, lesson_id
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.downlink import Downlink

KEEP_ENDED_DAYS = 7   # a teaching point still learns of a lesson it missed last week (its recording is fetched)
COLUMNS = ("lesson", "start", "minutes", "subject", "grade", "teacher", "title")


class LiveTimetable:
    """Schedule, cancel and list the live lessons of each teaching point."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def schedule(self, school_code: str, entry: dict) -> int:
        """Add or change one lesson of ``school_code`` and queue the school's timetable; returns the message's seq."""
        checked = check_entry(entry)
        downlink = Downlink(self.db)
        if school_code not in downlink.schools():  # refused before anything is stored
            raise DeviceError(f"县平台没有学校 {school_code} 的已登记设备，未排课",
                              f"no enrolled device for school {school_code}; nothing scheduled")
        with transaction(self.db):
            self.db.execute(f"insert into live_timetable (school_code, {', '.join(COLUMNS)})"
                            f" values (?, {', '.join('?' * len(COLUMNS))}) on conflict (school_code, lesson) do update set"
                            f" {', '.join(f'{c} = excluded.{c}' for c in COLUMNS if c != 'lesson')}",
                            [school_code, *(checked[c] for c in COLUMNS)])
            return self._queue(school_code, downlink)

    def cancel(self, school_code: str, lesson: str) -> int:
        """Remove one lesson of ``school_code`` and queue the school's timetable; returns the message's seq."""
        lesson = lesson_id(lesson)
        with transaction(self.db):
            gone = self.db.execute("delete from live_timetable where school_code = ? and lesson = ?", [school_code, lesson]).rowcount
            if not gone:
                raise FormatError(f"学校 {school_code} 的课表里没有课程 {lesson}", f"school {school_code} has no lesson {lesson} in its timetable")
            return self._queue(school_code, Downlink(self.db))

    def lessons(self, school_code: str, now: float | None = None) -> list[dict]:
        """The school's lessons, by start, without those ended more than ``KEEP_ENDED_DAYS`` ago."""
        floor = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc) - timedelta(days=KEEP_ENDED_DAYS)
        rows = [dict(zip(COLUMNS, r)) for r in self.db.execute(
            f"select {', '.join(COLUMNS)} from live_timetable where school_code = ? order by start, lesson", [school_code])]
        return [r for r in rows
                if datetime.fromisoformat(r["start"]) + timedelta(minutes=r["minutes"]) >= floor]

    def schools_of(self, lesson: str) -> list[str]:
        """The teaching points that have ``lesson`` in their timetable."""
        return [r[0] for r in self.db.execute("select school_code from live_timetable where lesson = ? order by 1", [lesson])]

    def _queue(self, school_code: str, downlink: Downlink) -> int:
        payload = check_timetable({"lessons": self.lessons(school_code), "issued_at": time.time()})
        return downlink.queue(school_code, TIMETABLE_MESSAGE, payload)


def timetable_json(rows: list[dict]) -> str:
    """The timetable as the CLI prints it (one JSON line per lesson)."""
    return "\n".join(json.dumps(r, ensure_ascii=False, sort_keys=True) for r in rows)
