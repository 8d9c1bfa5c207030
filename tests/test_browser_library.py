"""The library in a real browser on a tablet: browse, search, play a video and seek, lessons sandboxed."""

import re

import httpx
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from edge_agent.front import OPEN_FILE_CACHE_VALID_S
from hub_sync.core.processes import wait_until

from fixtures.browser import LAPTOP, SCREEN, TABLET

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served site and Chromium: seconds per test


def test_student_browses_by_subject_and_grade_on_a_tablet(pages, site):
    page = pages.open(TABLET)
    page.goto(site.base + "/library")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    page.select_option("#f-subject", "语文")
    page.select_option("#f-grade", "一年级")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"subject="))
    assert page.locator(".card").count() == 5
    page.select_option("#f-chapter", "汉语拼音 第一单元")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"chapter="))
    titles = page.locator(".card .title").all_inner_texts()
    assert sorted(titles) == sorted(["汉语拼音 第一课 a o e", "汉语拼音 第二课 i u ü", "拼音儿歌 跟读音频"])
    page.fill("#q", "儿歌")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"q="))
    assert page.locator(".card .title").all_inner_texts() == ["拼音儿歌 跟读音频"]


def test_video_plays_and_seeking_uses_range_requests(pages, site):
    page = pages.open(TABLET)
    ranges = []
    page.on("request", lambda r: ranges.append(r.headers.get("range")) if "/content/" in r.url else None)
    page.goto(site.base + "/library/sample-video-00001")
    video = page.locator("video#media")
    page.wait_for_function("document.getElementById('media').readyState >= 1")
    assert page.evaluate("document.getElementById('media').duration") == pytest.approx(12, abs=0.6)
    page.evaluate("document.getElementById('media').muted = true; document.getElementById('media').play()")
    page.wait_for_function("document.getElementById('media').currentTime > 0.3")
    page.evaluate("document.getElementById('media').currentTime = 9")
    page.wait_for_function("document.getElementById('media').currentTime >= 9 && !document.getElementById('media').seeking")
    assert video.is_visible()
    assert any(r and r.startswith("bytes=") for r in ranges)


def test_html_lesson_runs_in_a_sandbox_without_the_appliance_origin(pages, site):
    page = pages.open(TABLET)
    page.goto(site.base + "/library/sample-00000")
    frame = page.frame_locator("iframe.lesson")
    frame.locator("button").click()
    assert frame.locator("#ok").inner_text() == "真棒！"
    origin = page.frames[1].evaluate("window.origin")
    assert origin == "null"  # sandboxed: no cookies, no storage of the appliance


def test_resource_removed_while_open_says_so(pages, site):
    from edge_agent.appliance import Appliance
    from edge_agent.config import EdgeConfig

    page = pages.open(TABLET)
    page.goto(site.base + "/library/sample-00002")  # an audio
    appliance = Appliance.open(EdgeConfig.load(site.data_dir, {"advertise": False, "free_space_reserve_mb": 1}))
    try:
        res = appliance.catalogue.get("sample-00002")
        appliance.catalogue.delete("sample-00002")
        note = page.locator(".removed")

        def reload_shows_removed() -> bool:
            page.evaluate("var m = document.getElementById('media'); m.src = m.src.split('?')[0] + '?t=' + Date.now(); m.load()")
            try:
                note.wait_for(state="visible", timeout=1000)
                return True
            except PlaywrightTimeout:
                return False

        # the front's public links follow the catalogue within seconds, and each nginx worker may
        # send a file it opened up to OPEN_FILE_CACHE_VALID_S longer (docs/lan-front.md)
        wait_until(reload_shows_removed, OPEN_FILE_CACHE_VALID_S + 20, "the player to say the resource was removed")
        assert "已被移除" in note.inner_text()
        page.goto(site.base + "/library/sample-00002")
        assert "找不到资源" in page.locator(".error-page").inner_text()
    finally:
        appliance.catalogue.upsert(res)
        appliance.close()


def test_projection_mode_fills_the_classroom_screen(pages, site):
    page = pages.open(SCREEN)
    page.goto(site.base + "/project/sample-video-00001")
    assert page.locator("header").count() == 0
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('h1')).fontSize)")
    assert size >= 60
    box = page.locator("video").bounding_box()
    assert box["height"] > 600


def test_english_is_chosen_per_user_and_kept(pages, site):
    page = pages.open(LAPTOP)
    page.goto(site.base + "/library")
    page.click("a.lang")
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.locator("h1").inner_text() == "Library"
    page.goto(site.base + "/student/login")
    assert page.locator("h1").inner_text() == "Student login"
    assert page.locator(".people a").first.inner_text() == "一年级1班"  # names of classes are data, not translated
    other = pages.open(LAPTOP)  # another user, another browser: still Chinese
    other.goto(site.base + "/library")
    assert other.locator("h1").inner_text() == "资源库"
    assert httpx.get(site.base + "/library").text.count("资源库") >= 1


A11Y_CHECK = """() => {
  const problems = [];
  const visible = el => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden';
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (!visible(el)) continue;
    const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label') || el.getAttribute('aria-label');
    if (!labelled) problems.push('unlabelled ' + (el.id || el.name));
  }
  for (const el of document.querySelectorAll('button, .button, nav a, .card a, .people a, .lang, select, input[type=text], input[type=search]')) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.height < 44) problems.push('small target ' + el.outerHTML.slice(0, 60) + ' ' + box.height);
  }
  if (!document.documentElement.lang) problems.push('no lang');
  return problems;
}"""


def test_key_pages_are_labelled_and_have_big_enough_targets(pages, site):
    from fixtures.browser import staff_login, student_login

    page = pages.open(TABLET)
    school = site.school
    who = school.students["王小明"]
    for url in ("/", "/library", "/library/sample-00009", f"/student/login/{school.class_id}",
                f"/student/login/{school.class_id}/{who['id']}", "/login"):
        page.goto(site.base + url)
        assert page.evaluate(A11Y_CHECK) == [], url
    student_login(page, site, "王小明")
    for url in ("/student", f"/student/assignments/{school.assignments['exercise']}",
                f"/student/assignments/{school.assignments['work']}", "/student/messages"):
        page.goto(site.base + url)
        assert page.evaluate(A11Y_CHECK) == [], url
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, school.teacher)
    for url in ("/teacher", f"/teacher/classes/{school.class_id}", "/teacher/grading", "/teacher/uploads",
                "/teacher/assign/sample-00009"):
        teacher.goto(site.base + url)
        assert teacher.evaluate(A11Y_CHECK) == [], url
