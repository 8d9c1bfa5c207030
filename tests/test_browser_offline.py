"""Wi-Fi that flickers: the appliance is stopped mid-exercise and started again. The page shell comes
from the service worker, the answer waits on the tablet and is recorded exactly once."""

import pytest

from fixtures.browser import TABLET, open_db, png_photo, student_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served site and Chromium: seconds per test


def count(site, table, assignment_id):
    db = open_db(site)
    try:
        return db.execute(f"select count(*) from {table} where assignment_id = ?", [assignment_id]).fetchone()[0]
    finally:
        db.close()


def outbox(page) -> int:
    return page.evaluate("JSON.parse(localStorage.getItem('school-edge-outbox') || '[]').length")


def test_answer_and_photo_made_while_the_server_is_down_are_kept_and_sent_once_when_it_is_back(pages, site, tmp_path):
    page = pages.open(TABLET)
    student_login(page, site, "王小明")
    exercise = site.school.assignments["exercise"]
    url = f"{site.base}/student/assignments/{exercise}"
    page.goto(url)
    page.evaluate("navigator.serviceWorker.ready")
    page.reload()  # now under the service worker, which keeps a copy of the page
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    work_url = f"{site.base}/student/assignments/{site.school.assignments['work']}"
    page.goto(work_url)  # visited once while online, so its page is kept too
    page.goto(url)

    site.stop()  # the Wi-Fi drops
    q = page.locator(".question")
    q.nth(0).locator("input").nth(1).check()
    q.nth(1).locator("input[value=true]").check()
    page.click("#submit-answers")
    page.wait_for_function("document.getElementById('exercise-result').textContent.length > 0")
    assert page.locator("#exercise-result").inner_text() == "答案已保存在平板上，连上学校服务器后会自动提交。"
    assert outbox(page) == 1
    page.locator("#net").wait_for(state="visible")
    assert "连不上学校服务器" in page.locator("#net").inner_text()

    page.reload()  # still down: the page opens from the service worker's copy, the answer is still there
    assert page.locator("h1").inner_text() == "识字 第一单元 练习"
    assert outbox(page) == 1 and page.locator("#submit-answers").is_disabled()
    page.goto(work_url)  # a photo handed in while still down
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_photo())
    page.set_input_files("#photo", str(photo))
    page.locator("#photo-preview").wait_for(state="visible")
    page.click("#submit-work")
    page.wait_for_function("document.getElementById('handin-result').textContent.length > 0")
    assert page.locator("#handin-result").inner_text() == "作业已保存在平板上，连上学校服务器后会自动交上去。"
    assert outbox(page) == 2
    page.goto(url)

    site.start()  # same port, same data: the Wi-Fi is back
    page.wait_for_function("JSON.parse(localStorage.getItem('school-edge-outbox')).length === 0", timeout=15_000)
    page.wait_for_function("document.getElementById('exercise-result').textContent.indexOf('/') > 0")
    assert page.locator("#exercise-result").inner_text() == "得分 2 / 4"
    page.wait_for_timeout(3500)  # another flush round: nothing more is sent
    assert count(site, "answers", exercise) == 1
    assert count(site, "submissions", site.school.assignments["work"]) == 1
