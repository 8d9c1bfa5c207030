"""A teaching point pulls only its own live lessons: the served appliance's live job fetches the
lessons of the timetable the county sent it (on now, or starting within two minutes) and the
missed ones the timetable hands over, never another school's lesson the hub also relays; a
lesson pulled by hand is fetched whatever the timetable says."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from edge_agent.live.job import LiveJob
from edge_agent.live.puller import Puller
from edge_agent.live.store import LiveStore
from edge_agent.sync.live_link import LiveLink
from edge_agent.sync.live_schedule import PULL_LEAD, Lesson, to_pull
from edge_agent.sync.usage_sync import upload_pending
from fixtures.servers import HubInFront
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.core.processes import wait_until
from hub_sync.formats.live_manifest import Lesson as LessonRecord
from hub_sync.formats.live_manifest import LiveFile, Manifest, Rung, seal_manifest
from hub_sync.hub.live_relay import LiveRelay
from hub_sync.hub.live_timetable import LiveTimetable

RUNGS = [Rung("v500", 330000, "avc1.42c01e,mp4a.40.2", "320x180"), Rung("a48", 52800, "mp4a.40.2")]
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)


def _lesson(name: str, start_min: float, minutes: int = 40) -> Lesson:
    return Lesson(name, T0 + timedelta(minutes=start_min), minutes, "数学")


def test_the_lessons_pulled_are_those_on_now_or_starting_within_the_lead():
    timetable = [_lesson("ended", -60), _lesson("on", -5), _lesson("soon", 1.5), _lesson("later", 3),
                 _lesson("tomorrow", 24 * 60)]
    assert [m.lesson for m in to_pull(timetable, T0)] == ["on", "soon"]
    assert PULL_LEAD == timedelta(minutes=2)
    assert [m.lesson for m in to_pull(timetable, T0 + timedelta(minutes=34))] == ["on", "soon", "later"]
    assert [m.lesson for m in to_pull(timetable, T0 + timedelta(minutes=35))] == ["soon", "later"]  # "on" ended
    assert to_pull([], T0) == []
    # an appliance booted at 1970 reads the timetable at its issue time, as the pages do
    assert [m.lesson for m in to_pull(timetable, datetime(1970, 1, 1, tzinfo=timezone.utc), issued_at=T0)] == ["on", "soon"]


class WatchedHub(HubInFront):
    """The real hub app on 127.0.0.1, noting every path it served (what crossed the school's WAN)."""

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.served: list[str] = []

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.served.append(environ["PATH_INFO"])
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        with self.real.open(environ["PATH_INFO"], method=environ["REQUEST_METHOD"], data=body, headers=headers,
                            content_type=environ.get("CONTENT_TYPE")) as answer:  # closes the files it sent
            start_response(answer.status, list(answer.headers.items()))
            return [answer.data]

    def asked_for(self, lesson: str) -> list[str]:
        return [p for p in self.served if f"/{lesson}/" in p]


def _publish(relay: LiveRelay, keys: Path, lesson: str) -> bytes:
    """Register ``lesson`` with a publisher key and relay its first segment (the lesson goes on)."""
    signer = generate_key(keys / f"{lesson}.pem")
    relay.register(LessonRecord(lesson=lesson, title=f"课 {lesson}", subject="数学", grade="三年级", teacher="王老师",
                                date="2026-03-02", publisher_key=public_key_dict(signer)))
    data = f"segment 0 of {lesson} ".encode() * 200
    f = LiveFile("v500/00000.ts", hashlib.sha256(data).hexdigest(), len(data), "v500", 0, 1.0)
    relay.accept(lesson, seal_manifest(Manifest(lesson, 1, 1.0, RUNGS, [f]), signer), {f.path: io.BytesIO(data)})
    return data


def _iso(delta_min: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=delta_min)).isoformat()


def test_the_live_job_pulls_this_schools_timetable_and_never_another_schools_lesson(county, tmp_path):
    school = county.school("S001", "school-a")
    county.school("S002", "school-b")
    timetable = LiveTimetable(county.hub.db)
    for code, lesson, start in (("S001", "ours-now", -5), ("S001", "ours-soon", 1), ("S001", "ours-later", 30),
                                ("S001", "ours-missed", -120), ("S002", "theirs-now", -5)):
        timetable.schedule(code, {"lesson": lesson, "start": _iso(start), "minutes": 40, "subject": "数学"})
    assert upload_pending(school, county.url).downlink.applied >= 1  # the timetable came down, signed
    relay = LiveRelay(county.hub.data_dir, county.hub.online_signer)
    (tmp_path / "keys").mkdir()
    sent = {lesson: _publish(relay, tmp_path / "keys", lesson)
            for lesson in ("ours-now", "ours-soon", "ours-later", "ours-missed", "theirs-now")}
    front = WatchedHub(county.hub)
    school.set_identity(hub_url=front.url)
    store = LiveStore(school.data_dir)
    job = LiveJob(school)
    job.poll_s = 0.2
    try:
        with httpx.Client(timeout=10, trust_env=False) as client:
            LiveLink(school, prefetch=store.want).round(client)  # hands the missed lesson over
        assert store.wanted() == ["ours-missed"]
        job.thread.start()
        mine = ("ours-now", "ours-soon", "ours-missed")

        def arrived(lesson: str) -> Path:
            return school.data_dir / "live" / lesson / "v500" / "00000.ts"

        wait_until(lambda: all(arrived(lesson).is_file() for lesson in mine), 20, "this school's lessons to arrive")
        passes = job.passes
        wait_until(lambda: job.passes >= passes + 3, 10, "three more passes over the timetable")
    finally:
        job.stop()
        front.close()
    for lesson in mine:
        assert arrived(lesson).read_bytes() == sent[lesson]
    # the other school's lesson, and this school's lesson in half an hour, never crossed the WAN
    assert front.asked_for("theirs-now") == [] and front.asked_for("ours-later") == []
    assert "/live/index.json" not in front.served
    for lesson in ("theirs-now", "ours-later"):
        assert not (school.data_dir / "live" / lesson).exists()
        assert not (school.data_dir / "live-state" / lesson).exists()
    assert store.lessons() == ["ours-missed", "ours-now", "ours-soon"]

    # by hand (``school-edge live pull``'s puller) any lesson the hub has is fetched, timetable or not
    puller = Puller(store, county.url, "theirs-now", county.hub.online_signer.public_key)
    try:
        assert puller.round(threading.Event()) is False  # fetched what there is; the lesson goes on
    finally:
        puller.close()
    assert arrived("theirs-now").read_bytes() == sent["theirs-now"]
