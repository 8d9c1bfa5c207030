"""A pupil doing an exercise in the real browser (Debian's Chromium on a tablet viewport)
still gets instant feedback from the server, and no answer ever reaches the tablet: not
in a page, a script, an API answer, the service worker's cache, nor by asking for the
exercise file with the pupil's own session."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError

from fixtures.browser import TABLET, staff_login, student_login

pytestmark = pytest.mark.browser

ANSWERS = ("十二", '"answer"', "answer_key")  # the sample exercise's fill-in answer and the key's field names


def test_a_pupil_gets_instant_feedback_and_never_the_answers(pages, site):
    page = pages.open(TABLET)
    seen: list[tuple[str, str]] = []  # (url, body) of every text answer, read as it arrives
    unread: list[tuple[str, str]] = []  # pages the browser left before their body could be read: asked for again below

    def keep(response) -> None:
        kind = response.headers.get("content-type", "")
        if re.match(r"(text/|application/(json|javascript))", kind) and response.status not in (204, 301, 302, 304):
            try:
                seen.append((response.url, response.body().decode("utf-8", "replace")))
            except PlaywrightError:  # "navigated away from": Chromium has dropped that body
                unread.append((response.request.method, response.url))

    student_login(page, site, "张伟")  # before listening: its POST's page is left at once, its body unreadable
    page.on("response", keep)
    page.goto(f"{site.base}/student/assignments/{site.school.assignments['exercise']}")
    q = page.locator(".question")
    assert q.count() == 4
    q.nth(0).locator("input").nth(1).check()        # right
    q.nth(1).locator("input[value=true]").check()   # right
    q.nth(2).locator("input").nth(0).check()        # only one of the two fruits: wrong
    q.nth(3).locator("input").fill("十二")          # right, in Chinese numerals
    page.click("#submit-answers")
    page.wait_for_function("document.getElementById('exercise-result').textContent.indexOf('/') > 0")
    assert page.locator("#exercise-result").inner_text() == "得分 3 / 4"
    assert "答对了" in q.nth(3).locator(".feedback").inner_text()
    assert "再想想" in q.nth(2).locator(".feedback").inner_text()

    # the exercise file itself, asked for with the pupil's cookies from the page
    files = page.evaluate("""async () => {
        const r = await fetch('/api/v1/resources?kind=exercise&limit=500');
        const out = [];
        for (const res of (await r.json()).resources) {
            for (const f of res.files) {
                for (const url of [f.url, '/r/' + res.id + '/' + f.path]) {
                    const got = await fetch(url);
                    out.push([url, got.status, await got.text()]);
                }
            }
        }
        return out;
    }""")
    assert files and all(status == 403 for _, status, _ in files), [(u, s) for u, s, _ in files if s != 403]
    assert not [u for u, _, body in files if any(a in body for a in ANSWERS)]

    cached = page.evaluate("""async () => {
        const out = [];
        for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const req of await cache.keys()) { out.push(await (await cache.match(req)).text()); }
        }
        return out;
    }""")
    assert {method for method, _ in unread} <= {"GET"}, unread  # what can be asked for again without doing it twice
    seen += [(url, page.request.get(url).text()) for _, url in unread]  # with the pupil's cookies, as the page had
    assert any("/api/v1/assignments/" in url and "/answers" in url for url, _ in seen)  # the graded answer was read too
    leaks = [(url, a) for url, body in seen for a in ANSWERS if a in body]
    leaks += [("service worker cache", a) for body in cached for a in ANSWERS if a in body]
    assert leaks == []


def test_a_teacher_opens_the_exercise_file_and_the_shared_tablet_keeps_no_copy(pages, site):
    page = pages.open(TABLET)
    staff_login(page, site, site.school.teacher)
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")
    url = page.evaluate("""async () => {
        const r = await fetch('/api/v1/resources?kind=exercise&limit=1');
        return (await r.json()).resources[0].files[0].url;
    }""")
    page.goto(site.base + url)  # a navigation: the service worker sees it
    assert "十二" in page.content()  # the teacher does see the answers
    page.goto(site.base + "/teacher")
    cached = page.evaluate("""async () => {
        const out = [];
        for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const req of await cache.keys()) { out.push([req.url, await (await cache.match(req)).text()]); }
        }
        return out;
    }""")
    assert any(u.endswith("/teacher") for u, _ in cached)  # pages are still kept for offline use
    assert not [u for u, body in cached if "十二" in body]
