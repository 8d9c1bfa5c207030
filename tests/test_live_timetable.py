"""The live lessons' (专递课堂) timetable: what is on now and next (pure, with a clock at 1970 or
run ahead), and the county's timetable reaching a teaching point through the signed downlink,
applied once with the cursor; bad input refused with nothing changed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from edge_agent.live.store import LiveStore
from edge_agent.sync import downlink
from edge_agent.sync.live_link import LIVE_FAST_S, LiveLink
from edge_agent.sync.live_schedule import Lesson, schedule_at
from edge_agent.sync.live_timetable import apply_timetable, current_schedule, lessons
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.errors import FormatError
from hub_sync.core.sqlite_db import transaction
from hub_sync.hub.downlink import Downlink
from hub_sync.hub.live_timetable import LiveTimetable

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # 08:00 in China


def live_cli(county, verb: str, *args: str):
    """``school-edge hub live VERB --data HUB ARGS`` in-process."""
    return CliRunner().invoke(main, ["hub", "live", verb, "--data", str(county.hub.data_dir), *args])


def lesson(name: str, start_min: int, minutes: int = 40) -> Lesson:
    return Lesson(name, T0 + timedelta(minutes=start_min), minutes, "数学", "三年级", "王老师", name)


DAY = [lesson("math-1", 0), lesson("chinese-1", 50), lesson("music-1", 100, 30)]


# -- pure: now and next ---------------------------------------------------------------------
def test_now_and_next_through_a_morning():
    before = schedule_at(DAY, T0 - timedelta(minutes=10))
    assert before.current is None and before.next.lesson == "math-1" and before.clock == "ok"
    during = schedule_at(DAY, T0 + timedelta(minutes=39, seconds=59))
    assert during.current.lesson == "math-1" and during.next.lesson == "chinese-1"
    at_end = schedule_at(DAY, T0 + timedelta(minutes=40))  # the end is not part of the lesson
    assert at_end.current is None and at_end.next.lesson == "chinese-1"
    last = schedule_at(DAY, T0 + timedelta(minutes=110))
    assert last.current.lesson == "music-1" and last.next is None
    after = schedule_at(DAY, T0 + timedelta(hours=3))
    assert after.current is None and after.next is None


def test_of_two_overlapping_lessons_the_later_start_is_on():
    overlap = [lesson("a", 0, 60), lesson("b", 30, 30)]
    assert schedule_at(overlap, T0 + timedelta(minutes=45)).current.lesson == "b"
    assert schedule_at(overlap, T0 + timedelta(minutes=10)).current.lesson == "a"


def test_missed_lessons_are_the_ended_ones_of_the_last_week_without_a_recording():
    week_ago = lesson("old", -8 * 24 * 60)
    s = schedule_at([week_ago, *DAY], T0 + timedelta(hours=3), recorded={"chinese-1"})
    assert [m.lesson for m in s.missed] == ["math-1", "music-1"]


def test_a_clock_at_1970_reads_the_timetable_at_its_issue_time_and_says_so():
    issued = T0 - timedelta(minutes=20)
    s = schedule_at(DAY, datetime(1970, 1, 1, tzinfo=timezone.utc), issued_at=issued)
    assert s.clock == "behind" and s.now == issued
    assert s.current is None and s.next.lesson == "math-1" and s.missed == []
    assert s.to_json()["clock"] == "behind"


def test_a_clock_a_little_behind_the_hub_is_trusted():
    s = schedule_at(DAY, T0 + timedelta(minutes=1), issued_at=T0 + timedelta(minutes=3))
    assert s.clock == "ok" and s.current.lesson == "math-1"


def test_a_clock_run_far_ahead_is_flagged_and_fetches_nothing_as_missed():
    s = schedule_at(DAY, T0 + timedelta(days=400), issued_at=T0 - timedelta(days=1), proven=T0)
    assert s.clock == "ahead_suspect" and s.current is None and s.missed == []


# -- the county's timetable down to the school -------------------------------------------------
def _iso(delta_min: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=delta_min)).astimezone(timezone(timedelta(hours=8))).isoformat()


def test_a_scheduled_lesson_reaches_the_school_once_with_the_cursor(county):
    app = county.school("S001", "school-a")
    other = county.school("S002", "school-b")
    r = live_cli(county, "schedule", "--school", "S001", "--school", "S002", "--lesson", "math-0302", "--start", _iso(-5),
                   "--minutes", "40", "--subject", "数学", "--grade", "三年级", "--teacher", "王老师", "--title", "分数")
    assert r.exit_code == 0, r.output
    assert "Scheduled math-0302 for S001" in r.output and "S002" in r.output
    r = live_cli(county, "schedule", "--school", "S001", "--lesson", "chinese-0302", "--start", _iso(60),
                   "--minutes", "40", "--subject", "语文")
    assert r.exit_code == 0, r.output
    result = upload_pending(app, county.url)
    assert result.downlink.applied == 2 and result.downlink.failed == 0
    assert [m.lesson for m in lessons(app.db)] == ["math-0302", "chinese-0302"]
    now = current_schedule(app.db, app.clock)
    assert now.current.lesson == "math-0302" and now.current.teacher == "王老师" and now.next.lesson == "chinese-0302"
    assert [m.lesson for m in lessons(other.db)] == []  # not synced yet
    # the same answer again (a replay, or the stick and the network at once) changes nothing
    cursor = downlink.cursor(app.db)
    again = upload_pending(app, county.url)
    assert again.downlink.applied == 0 and downlink.cursor(app.db) == cursor
    # a cancelled lesson leaves the school's timetable with the next message
    r = live_cli(county, "cancel", "--school", "S001", "--lesson", "chinese-0302")
    assert r.exit_code == 0, r.output
    upload_pending(app, county.url)
    assert [m.lesson for m in lessons(app.db)] == ["math-0302"]
    r = live_cli(county, "timetable", "--school", "S001")
    assert "math-0302" in r.output and "chinese-0302" not in r.output


@pytest.mark.parametrize("args, message", [
    (["--start", "2026-03-02T08:00:00", "--minutes", "40"], "lacks a time zone"),
    (["--start", "tomorrow", "--minutes", "40"], "not an ISO 8601 time"),
    (["--start", "2026-03-02T08:00:00+08:00", "--minutes", "0"], "minutes must be"),
    (["--start", "2026-03-02T08:00:00+08:00", "--minutes", "40", "--lesson", "../x"], "lesson id"),
    (["--start", "2026-03-02T08:00:00+08:00", "--minutes", "40", "--school", "NOPE"], "no enrolled device"),
])
def test_a_bad_schedule_is_refused_in_one_line_and_queues_nothing(county, args, message):
    county.school("S001", "school-a")
    base = {"--school": "S001", "--lesson": "math-1", "--subject": "数学"}
    given = dict(zip(args[::2], args[1::2]))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    r = live_cli(county, "schedule", *argv)
    assert r.exit_code == 1
    assert message in r.output and len(r.output.strip().splitlines()) == 1
    assert county.queued() == []
    assert county.hub.db.execute("select count(*) from live_timetable").fetchone()[0] == 0


def test_a_malformed_timetable_message_fails_alone_and_keeps_the_old_timetable(county):
    app = county.school("S001", "school-a")
    LiveTimetable(county.hub.db).schedule("S001", {"lesson": "math-1", "start": _iso(-1), "minutes": 40, "subject": "数学"})
    upload_pending(app, county.url)
    # a message the hub's own checks would refuse, queued behind their back
    Downlink(county.hub.db).queue("S001", "live_timetable", {"lessons": [{"lesson": "x", "start": "soon", "minutes": 1}]})
    Downlink(county.hub.db).queue("S001", "notice", {"subject": "通知", "body": "下一条照常"})
    result = upload_pending(app, county.url)
    assert result.downlink.failed == 1 and result.downlink.applied == 1
    assert "not an ISO 8601 time" in result.downlink.failures[0]["reason"]
    assert [m.lesson for m in lessons(app.db)] == ["math-1"]


def test_apply_refuses_a_bad_payload_before_changing_anything(appliance):
    db = appliance.db
    with transaction(db):
        apply_timetable(db, {"lessons": [{"lesson": "a", "start": "2026-03-02T08:00:00+08:00", "minutes": 40, "subject": "数学"}],
                             "issued_at": 1.0})
    with pytest.raises(FormatError):
        with transaction(db):
            apply_timetable(db, {"lessons": [{"lesson": "b", "start": "2026-03-02T08:00:00+08:00", "minutes": 4000,
                                              "subject": "数学"}], "issued_at": 2.0})
    assert [m.lesson for m in lessons(db)] == ["a"]


def test_a_missed_lesson_is_handed_to_the_puller_and_a_lesson_on_keeps_the_link_fast(county):
    app = county.school("S001", "school-a")
    app.set_identity(hub_url=county.url)
    timetable = LiveTimetable(county.hub.db)
    timetable.schedule("S001", {"lesson": "missed-1", "start": _iso(-120), "minutes": 40, "subject": "数学"})
    timetable.schedule("S001", {"lesson": "now-1", "start": _iso(-5), "minutes": 40, "subject": "语文"})
    upload_pending(app, county.url)
    store = LiveStore(app.data_dir)
    link = LiveLink(app, prefetch=store.want)
    with httpx.Client(timeout=10) as client:
        assert link.round(client) == LIVE_FAST_S
        assert store.lessons() == ["missed-1"]  # the puller fetches its recording; the lesson on is pulled live
        link.round(client)
        assert link.prefetched == {"missed-1"}
