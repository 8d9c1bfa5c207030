"""What is on now and next in a teaching point's live-lesson (专递课堂) timetable, and which of
its lessons the appliance pulls (``to_pull``: on now or about to start; never another school's):
pure logic.

No I/O and no clock of its own: the caller passes the timetable (``edge_agent.sync.live_timetable``),
the appliance's trusted time (``Appliance.clock``: never below a time a signed hub message proved)
and when the hub issued the timetable. An appliance without an RTC battery may boot at 1970: a
time before the timetable was issued cannot be right, so the issue time is used instead and the
answer says the clock is behind (the page asks for a sync); a time far past the last proof is
flagged too, as it may be a clock run ahead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

CLOCK_SLACK = timedelta(minutes=5)        # a clock this far behind the hub's is still right enough
CLOCK_AHEAD_SUSPECT = timedelta(days=60)  # a term's timetable is re-issued well within this
MISSED_WITHIN = timedelta(days=7)         # a lesson missed longer ago is no longer fetched by itself
PULL_LEAD = timedelta(minutes=2)          # a lesson about to start is pulled this early, so joining is fast


@dataclass(frozen=True)
class Lesson:
    """One scheduled lesson (an entry of ``hub_sync.formats.live_timetable``)."""

    lesson: str
    start: datetime
    minutes: int
    subject: str = ""
    grade: str = ""
    teacher: str = ""
    title: str = ""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.minutes)

    @classmethod
    def from_entry(cls, entry: dict) -> "Lesson":
        return cls(entry["lesson"], datetime.fromisoformat(entry["start"]).astimezone(timezone.utc), int(entry["minutes"]),
                   entry.get("subject", ""), entry.get("grade", ""), entry.get("teacher", ""), entry.get("title", ""))

    def to_json(self) -> dict:
        return {"lesson": self.lesson, "start": self.start.isoformat(), "end": self.end.isoformat(), "minutes": self.minutes,
                "subject": self.subject, "grade": self.grade, "teacher": self.teacher, "title": self.title}


@dataclass(frozen=True)
class Schedule:
    """The answer of ``schedule_at``."""

    now: datetime
    current: Lesson | None
    next: Lesson | None
    missed: list[Lesson] = field(default_factory=list)
    clock: str = "ok"   # "ok" | "behind" (the issue time was used) | "ahead_suspect"

    def to_json(self) -> dict:
        return {"now": self.now.isoformat(), "clock": self.clock,
                "current": self.current.to_json() if self.current else None,
                "next": self.next.to_json() if self.next else None,
                "missed": [m.to_json() for m in self.missed]}


def effective_now(trusted: datetime, issued_at: datetime | None, proven: datetime | None = None) -> tuple[datetime, str]:
    """(the time to read the timetable at, the clock's state) from the appliance's trusted time,
    the timetable's issue time and the latest proven hub time."""
    if issued_at is not None and trusted < issued_at - CLOCK_SLACK:
        return issued_at, "behind"
    last_proof = max((t for t in (issued_at, proven) if t is not None), default=None)
    if last_proof is not None and trusted - last_proof > CLOCK_AHEAD_SUSPECT:
        return trusted, "ahead_suspect"
    return trusted, "ok"


def schedule_at(lessons: list[Lesson], trusted: datetime, issued_at: datetime | None = None,
                proven: datetime | None = None, recorded: frozenset[str] | set[str] = frozenset()) -> Schedule:
    """What is on now (the lesson whose time contains now; of two overlapping, the later start),
    what is next (the first to start after now), and which ended lessons of the last
    ``MISSED_WITHIN`` have no recording here (``recorded``: lesson ids held), oldest first."""
    now, clock = effective_now(trusted, issued_at, proven)
    ordered = sorted(lessons, key=lambda lesson: (lesson.start, lesson.lesson))
    on = [lesson for lesson in ordered if lesson.start <= now < lesson.end]
    upcoming = [lesson for lesson in ordered if lesson.start > now]
    missed = [lesson for lesson in ordered
              if lesson.end <= now and now - lesson.end <= MISSED_WITHIN and lesson.lesson not in recorded]
    # a clock run ahead would call every lesson missed: fetch nothing on its word
    return Schedule(now, on[-1] if on else None, upcoming[0] if upcoming else None,
                    missed if clock != "ahead_suspect" else [], clock)


def to_pull(lessons: list[Lesson], trusted: datetime, issued_at: datetime | None = None,
            proven: datetime | None = None, lead: timedelta = PULL_LEAD) -> list[Lesson]:
    """The lessons of this school's timetable to pull live now: those on (now inside their time)
    or starting within ``lead``, by start. Any lesson not in the timetable is another school's,
    and never pulled by itself over the school's slow link."""
    now, _ = effective_now(trusted, issued_at, proven)
    return sorted((lesson for lesson in lessons if lesson.start - lead <= now < lesson.end),
                  key=lambda lesson: (lesson.start, lesson.lesson))
