"""The teaching point's live-lesson (专递课堂) timetable as the county last sent it.

The hub's downlink message ``live_timetable`` carries the school's whole timetable
(``hub_sync.formats.live_timetable``); ``apply_timetable`` replaces what is stored, inside
the downlink's transaction for that message (``edge_agent.sync.downlink``), so the
timetable and the cursor move together: a crash applies it again or not at all.
``current_schedule`` answers "what is on now and next" with the appliance's trusted clock
(``edge_agent.sync.live_schedule``).
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlite_utils

from hub_sync.core.migrations import Migrations
from hub_sync.formats.live_timetable import check_timetable

from edge_agent.sync.live_schedule import Lesson, Schedule, schedule_at, to_pull

migrations = Migrations("edge_live_timetable")


@migrations
def m001_live_timetable(db: sqlite_utils.Database) -> None:
    db.execute("create table live_timetable (lesson text primary key, start text not null, minutes integer not null,"
               " subject text not null, grade text not null, teacher text not null, title text not null)")
    db.execute("create table live_timetable_meta (key text primary key, value text not null)")


def apply_timetable(db: sqlite_utils.Database, payload: dict) -> int:
    """Replace the stored timetable with ``payload``'s (checked first: a bad one changes nothing).
    Runs inside the caller's transaction. Returns the number of lessons."""
    checked = check_timetable(payload)
    db.execute("delete from live_timetable")
    for e in checked["lessons"]:
        db.execute("insert into live_timetable values (?, ?, ?, ?, ?, ?, ?)",
                   [e["lesson"], e["start"], e["minutes"], e["subject"], e["grade"], e["teacher"], e["title"]])
    db.execute("insert or replace into live_timetable_meta values ('issued_at', ?)", [str(checked["issued_at"])])
    return len(checked["lessons"])


def lessons(db: sqlite_utils.Database) -> list[Lesson]:
    """The stored timetable, by start."""
    cols = ("lesson", "start", "minutes", "subject", "grade", "teacher", "title")
    return [Lesson.from_entry(dict(zip(cols, r))) for r in db.execute(
        f"select {', '.join(cols)} from live_timetable order by start, lesson")]


def issued_at(db: sqlite_utils.Database) -> datetime | None:
    """When the hub issued the stored timetable (a lower bound for the time now)."""
    row = db.execute("select value from live_timetable_meta where key = 'issued_at'").fetchone()
    return datetime.fromtimestamp(float(row[0]), timezone.utc) if row and float(row[0]) > 0 else None


def current_schedule(db: sqlite_utils.Database, clock, recorded: set[str] | frozenset[str] = frozenset()) -> Schedule:
    """Now, next and missed, read with ``clock`` (the appliance's ``TrustedClock``)."""
    return schedule_at(lessons(db), clock.now(), issued_at(db), clock.proven(), recorded)


def lessons_to_pull(db: sqlite_utils.Database, clock) -> list[str]:
    """Ids of the timetable's lessons on now or about to start (``live_schedule.to_pull``)."""
    return [m.lesson for m in to_pull(lessons(db), clock.now(), issued_at(db), clock.proven())]


def lesson_json(db: sqlite_utils.Database, lesson: str) -> dict | None:
    """One lesson of the timetable as JSON, or None."""
    found = [m for m in lessons(db) if m.lesson == lesson]
    return found[0].to_json() if found else None

