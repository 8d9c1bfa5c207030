"""A live lesson in Debian's Chromium on a teaching point's LAN, behind a 2 Mbit/s WAN: the hub and
the publisher (ffmpeg's test source) in a namespace of their own, the appliance in another behind
a ``tc tbf`` link, the classroom screen and three tablets in the clients' namespace. They play the
lesson from the appliance alone (no request leaves the LAN), the WAN is cut mid-lesson and the
pictures go on from what the appliance holds, and a question asked on a tablet during the cut
reaches the hub once the link returns."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from fixtures.browser import CHROMIUM, CHROMIUM_ARGS, SCREEN, TABLET, png_photo, prepare_school
from fixtures.lan import NETNS
from fixtures.live import LESSON, LiveCounty
from fixtures.usage import enroll

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import load_sample_library
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.processes import wait_until
from hub_sync.hub.live_timetable import LiveTimetable

pytestmark = [*NETNS, pytest.mark.browser]  # slow: one lesson of ~45 s with a 10 s cut
SCHOOL = "TP003"
LESSON_S = 45
CUT_S = 10
CURRENT = "document.getElementById('live-video').currentTime"
PLAYING = "() => { const v = document.getElementById('live-video'); return v && v.readyState >= 2 && v.currentTime > 0.5; }"


def _questions(county) -> list[str]:
    return [json.loads(b).get("text", "") for (b,) in
            county.hub.db.execute("select body from live_messages where kind = 'question' order by seq")]


def teaching_point(county: LiveCounty, rate: str):
    """One teaching point enrolled on the county's hub, the lesson on now in its timetable (sent down the
    WAN), its WAN shaped to ``rate`` and its appliance served; returns (site, school, LAN base URL)."""
    site = county.add_site()
    appliance = Appliance.open(EdgeConfig.load(site.data, {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        enroll(appliance, county.hub, school_code=SCHOOL)
        load_sample_library(appliance)
        school = prepare_school(appliance)
        LiveTimetable(county.hub.db).schedule(SCHOOL, {
            "lesson": LESSON, "start": (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat(),
            "minutes": 30, "subject": "数学", "grade": "三年级", "teacher": "王老师", "title": "分数的初步认识"})
        county.serve_hub()
        with site.lan.appliance.inside():  # the timetable comes down the WAN, signed, like every county message
            assert upload_pending(appliance, site.hub_url).downlink.applied == 1
    finally:
        appliance.close()
    site.shape(rate)
    return site, school, site.serve().base


def test_screen_and_tablets_play_through_a_wan_cut_and_a_question_asked_during_it_arrives(tmp_path):
    from playwright.sync_api import sync_playwright

    county = LiveCounty(tmp_path)
    publisher = None
    try:
        site, school, base = teaching_point(county, "2mbit")
        publisher = county.publish(LESSON_S)

        with site.lan.clients.inside(), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            errors: list[str] = []
            seen: list[str] = []
            try:
                def open_page(viewport: dict):
                    page = browser.new_context(viewport=viewport, locale="zh-CN").new_page()
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.on("request", lambda request: seen.append(request.url))
                    page.set_default_timeout(20_000)
                    return page

                screen = open_page(SCREEN)
                screen.goto(base + "/classroom/live")
                tablets = []
                for name, class_id in (("王小明", school.class_id), ("张伟", school.class_id), ("陈静", school.other_class_id)):
                    tablet = open_page(TABLET)
                    who = school.students[name]
                    r = tablet.request.post(base + "/api/v1/login/student", headers={"X-Requested-With": "test"},
                                            data={"class_id": class_id, "person_id": who["id"], "pin": who["pin"]})
                    assert r.ok, r.text()
                    tablet.goto(base + "/student/live")
                    tablets.append(tablet)
                for page in (screen, *tablets):
                    page.wait_for_function(PLAYING, timeout=60_000)

                site.cut()
                at = [page.evaluate(CURRENT) for page in (screen, *tablets)]
                tablets[0].fill("#live-q", "断网时问的问题")
                tablets[0].click("#live-question button[type=submit]")
                tablets[0].wait_for_selector("#live-mine .queued")
                for page, t in zip((screen, *tablets), at):  # the pictures go on from what the appliance holds
                    page.wait_for_function(f"{CURRENT} > {t} + 2", timeout=CUT_S * 1000)
                assert _questions(county) == []
                site.restore()

                wait_until(lambda: _questions(county) == ["断网时问的问题"], 30, "the question at the hub after the cut")
                tablets[0].wait_for_selector("#live-mine .delivered", timeout=15_000)
                for page in (screen, *tablets):
                    t = page.evaluate(CURRENT)
                    page.wait_for_function(f"{CURRENT} > {t} + 1", timeout=20_000)
            finally:
                browser.close()
        assert errors == []
        assert seen and all(url.startswith(base) or url.startswith(("blob:", "data:")) for url in seen), \
            [u for u in seen if not u.startswith(base)][:5]
        assert sum(url.endswith(".ts") for url in seen) > 10
    finally:
        if publisher is not None:
            publisher.stop()
        county.close()


def test_on_a_link_too_thin_for_video_the_sound_and_the_slides_go_on(tmp_path):
    """80 kbit/s: the appliance takes the audio-only rung; the screen says so, shows the teacher's
    slide large, and the lesson's sound goes on playing."""
    from playwright.sync_api import sync_playwright

    county = LiveCounty(tmp_path)
    publisher = None
    try:
        site, _school, base = teaching_point(county, "80kbit")
        slides = tmp_path / "slides"
        slides.mkdir()
        (slides / "p1.png").write_bytes(png_photo(64, 48))
        publisher = county.publish(30, slides=slides)
        with site.lan.clients.inside(), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            try:
                errors: list[str] = []
                screen = browser.new_context(viewport=SCREEN, locale="zh-CN").new_page()
                screen.on("pageerror", lambda exc: errors.append(str(exc)))
                screen.goto(base + "/classroom/live")
                screen.wait_for_function("document.getElementById('live').classList.contains('audio-only')", timeout=60_000)
                screen.wait_for_function("document.getElementById('live-note').textContent.includes('只有声音')")
                assert json.loads((site.data / "live" / LESSON / "status.json").read_text("utf-8"))["rung"] == "a48"
                screen.wait_for_selector("#live-slide:not([hidden])", timeout=30_000)
                screen.wait_for_function(PLAYING, timeout=60_000)
                t = screen.evaluate(CURRENT)
                screen.wait_for_function(f"{CURRENT} > {t} + 2", timeout=20_000)
                assert errors == []
            finally:
                browser.close()
    finally:
        if publisher is not None:
            publisher.stop()
        county.close()
