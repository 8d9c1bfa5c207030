"""A live lesson (专递课堂) in Debian's Chromium: the real publisher (ffmpeg's test source, 1 s
segments) sends through the county hub, the teaching point's appliance pulls one copy and serves
it from its nginx front; the classroom screen page and three pupils' tablets play it from the
appliance alone (no other address is ever asked), and a hand raised and a question asked on a
tablet reach the central teacher's page on the hub."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone

import pytest
from fixtures.browser import LAPTOP, SCREEN, TABLET, Site, png_photo, prepare_school, student_login
from fixtures.live import LESSON, REPO, prepare_appliance, publisher_argv
from fixtures.usage import enroll

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import load_sample_library
from edge_agent.sync.live_timetable import apply_timetable
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.sqlite_db import transaction
from hub_sync.core.processes import SupervisedProcess, wait_until
from hub_sync.hub.live_interaction import LiveInteraction
from hub_sync.hub.live_timetable import LiveTimetable

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # one lesson of ~40 s, watched by four browsers
SCHOOL = "TP001"
LESSON_S = 40
PLAYING = """() => { const v = document.getElementById('live-video');
                     return v && v.readyState >= 2 && v.currentTime > 0.5 && !v.paused; }"""


@pytest.fixture
def teaching_point(live_hub, tmp_path):
    """A teaching point enrolled on the live hub, with the lesson on now in its timetable, served."""
    data = tmp_path / "site"
    prepare_appliance(data, live_hub.hub, live_hub.url)
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        enroll(appliance, live_hub.hub, school_code=SCHOOL)
        load_sample_library(appliance)  # the school's assignments name sample resources
        school = prepare_school(appliance)
        LiveTimetable(live_hub.hub.db).schedule(SCHOOL, {
            "lesson": LESSON, "start": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(), "minutes": 30,
            "subject": "数学", "grade": "三年级", "teacher": "王老师", "title": "分数的初步认识"})
        assert upload_pending(appliance, live_hub.url).downlink.applied == 1
    finally:
        appliance.close()
    site = Site(data, school).start()
    try:
        yield site
    finally:
        site.stop()


def watch(page, site: Site, seen: list[str]) -> None:
    page.on("request", lambda request: seen.append(request.url))


def test_screen_and_three_tablets_play_from_the_appliance_and_a_hand_reaches_the_teacher(live_hub, teaching_point, pages):
    site = teaching_point
    publisher = SupervisedProcess(publisher_argv(live_hub.url, live_hub.key, LESSON_S), cwd=REPO, env=dict(os.environ))
    try:
        seen: list[str] = []
        screen = pages.open(SCREEN)
        watch(screen, site, seen)
        screen.goto(site.base + "/classroom/live")
        assert "分数的初步认识" in screen.inner_text("#live-title")
        tablets = []
        for name in ("王小明", "李小红", "张伟"):
            tablet = pages.open(TABLET)
            watch(tablet, site, seen)
            student_login(tablet, site, name)
            tablet.goto(site.base + "/student/live")
            tablets.append(tablet)
        # the central teacher signs in to the hub's page with the lesson's token
        teacher = pages.open(LAPTOP)
        teacher.goto(f"{live_hub.url}/live/{LESSON}/teacher")
        teacher.fill("input[name=token]", LiveInteraction(live_hub.hub.db).new_teacher_token(LESSON))
        teacher.click("button[type=submit]")
        teacher.wait_for_selector(f"[data-school={SCHOOL}]")

        for page in (screen, *tablets):  # the lesson plays, and goes on playing
            page.wait_for_function(PLAYING, timeout=LESSON_S * 1000)
        for page in (screen, *tablets):
            at = page.evaluate("document.getElementById('live-video').currentTime")
            page.wait_for_function(f"document.getElementById('live-video').currentTime > {at} + 1", timeout=15_000)

        tablets[0].click("#live-hand")
        tablets[1].fill("#live-q", "分子和分母哪个在上面？")
        tablets[1].click("#live-question button[type=submit]")
        teacher.wait_for_selector(f"[data-school={SCHOOL}] [data-hands='1']", timeout=20_000)
        teacher.wait_for_selector(f"[data-school={SCHOOL}] .question:has-text('分子和分母哪个在上面？')", timeout=20_000)
        tablets[0].wait_for_selector("#live-mine .delivered", timeout=10_000)

        assert seen and all(url.startswith(site.base) or url.startswith(("blob:", "data:")) for url in seen), \
            [u for u in seen if not u.startswith(site.base)][:5]
        assert any(url.endswith(".ts") for url in seen)  # the segments came from the appliance's front
    finally:
        publisher.stop()
    wait_until(lambda: not publisher.running(), 10, "the publisher to stop")


def set_timetable(data, on_now: bool) -> None:
    """The county's timetable as the downlink would leave it: the maths lesson on now (or cancelled),
    the Chinese lesson in an hour."""
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        maths = {"lesson": LESSON, "start": (datetime.now(timezone.utc) - timedelta(minutes=3)).isoformat(), "minutes": 40,
                 "subject": "数学", "grade": "三年级", "teacher": "王老师", "title": "分数的初步认识"}
        chinese = {"lesson": "chinese-0302", "start": (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat(),
                   "minutes": 40, "subject": "语文", "teacher": "李老师", "title": "古诗两首"}
        with transaction(appliance.db):
            apply_timetable(appliance.db, {"issued_at": time.time(), "lessons": [maths, chinese] if on_now else [chinese]})
    finally:
        appliance.close()


@pytest.fixture
def screen_site(tmp_path):
    """A served appliance with a lesson on now, whose LAN files the test writes as the puller would."""
    data = tmp_path / "screen"
    set_timetable(data, on_now=True)
    site = Site(data).start()
    try:
        yield site
    finally:
        site.stop()


def write_status(site: Site, **status) -> None:
    folder = site.data_dir / "live" / LESSON
    (folder / "slides").mkdir(parents=True, exist_ok=True)
    (folder / "slides" / "s1.png").write_bytes(png_photo(64, 48))
    (folder / "status.json.tmp").write_text(json.dumps({"lesson": LESSON, "state": "live", "rung": "v250", "behind_s": 0,
                                                        "slide": None, "recording": None, **status}), "utf-8")
    (folder / "status.json.tmp").rename(folder / "status.json")


def test_the_screen_says_when_it_is_behind_live_audio_only_or_recorded_in_chinese_and_english(screen_site, pages):
    site = screen_site
    write_status(site, state="stalled", rung="a48", behind_s=25, slide=f"/live/{LESSON}/slides/s1.png")
    screen = pages.open(SCREEN)
    screen.goto(site.base + "/classroom/live")
    assert "分数的初步认识" in screen.inner_text("#live-title")
    assert "古诗两首" in screen.inner_text("#live-next") and "李老师" in screen.inner_text("#live-next")
    screen.wait_for_function("document.getElementById('live-note').textContent.includes('比直播慢 25 秒')")
    note = screen.inner_text("#live-note")
    assert "网络中断了" in note and "只有声音" in note
    slide = screen.wait_for_selector("#live-slide:not([hidden])")
    assert slide.get_attribute("src") == f"/live/{LESSON}/slides/s1.png"
    assert screen.evaluate("document.getElementById('live-slide').naturalWidth") == 64  # served by the front
    assert "audio-only" in screen.get_attribute("#live", "class")

    write_status(site, state="recorded", recording="live-" + LESSON)
    screen.wait_for_selector(f"#live-note a[href='/library/live-{LESSON}']")
    assert "录播已存入资源库" in screen.inner_text("#live-note")
    assert screen.is_hidden("#live-slide")

    # the lesson is cancelled, then set again: the open screen follows the timetable by itself
    set_timetable(site.data_dir, on_now=False)
    screen.wait_for_function("document.getElementById('live-title').textContent.includes('现在没有直播课')", timeout=20_000)
    set_timetable(site.data_dir, on_now=True)
    screen.wait_for_function("document.getElementById('live-title').textContent.includes('分数的初步认识')", timeout=20_000)

    write_status(site, state="live", rung="v250", behind_s=30)
    screen.goto(site.base + "/lang/en?next=/classroom/live")
    screen.wait_for_function("document.getElementById('live-note').textContent.includes('30 seconds behind live')")
    assert "On now" in screen.inner_text("#live-title") and "sound only" not in screen.inner_text("#live-note")
