"""A student on a tablet (800x1280, touch), in a real browser: log in, see the work, watch a video and
seek, answer an exercise with instant feedback, hand in a photo; and what goes wrong on the way."""

import json
import re

import pytest

from fixtures.browser import TABLET, open_db, png_photo, student_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served site and Chromium: seconds per test


def attempts(site, assignment_id, person_id):
    db = open_db(site)
    try:
        return db.execute("select count(*) from answers where assignment_id = ? and person_id = ?",
                          [assignment_id, person_id]).fetchone()[0]
    finally:
        db.close()


def test_student_logs_in_with_picture_password_and_sees_what_is_assigned(pages, site):
    page = pages.open(TABLET)
    student_login(page, site, "李小红")
    assert page.locator("h1").inner_text() == "李小红 的学习空间"
    todo = page.locator("#todo-h + ul .title").all_inner_texts()
    assert set(todo) == {"种子发芽 微课视频", "识字 第一单元 练习", "画一画你的家"}
    assert "二班的作业" not in page.content()
    box = page.locator("#todo-h + ul .card a").first.bounding_box()
    assert box["height"] >= 44  # a child's finger


def test_wrong_pin_is_explained_next_to_the_field_in_chinese(pages, site):
    page = pages.open(TABLET)
    who = site.school.students["张伟"]
    page.goto(f"{site.base}/student/login/{site.school.class_id}/{who['id']}")
    assert page.locator("label[for=pin]").is_visible()
    page.fill("#pin", "0000" if who["pin"] != "0000" else "1111")
    page.click("#login-go")
    error = page.locator("#login-error")
    page.wait_for_function("document.getElementById('login-error').textContent.length > 0")
    assert "密码不对" in error.inner_text()
    assert page.url.endswith(f"/{who['id']}")


def test_assigned_video_plays_seeks_and_is_marked_finished(pages, site):
    page = pages.open(TABLET)
    student_login(page, site, "王小明")
    page.click("text=种子发芽 微课视频")
    page.wait_for_url(re.compile(r"/student/assignments/\d+"))
    page.wait_for_function("document.getElementById('media').readyState >= 1")
    page.evaluate("var m = document.getElementById('media'); m.muted = true; m.play(); m.currentTime = 8")
    page.wait_for_function("document.getElementById('media').currentTime >= 8 && !document.getElementById('media').seeking")
    page.click("#finished")
    page.wait_for_function("document.getElementById('finished-msg').textContent.length > 0")
    home = page.request.get(site.base + "/api/v1/me/home").json()
    video = next(a for a in home["assignments"] if a["id"] == site.school.assignments["video"])
    assert video["done"] and video["progress"] == "completed"


def test_exercise_gives_instant_feedback_and_a_double_tap_counts_once(pages, site):
    page = pages.open(TABLET)
    student_login(page, site, "王小明")
    page.goto(f"{site.base}/student/assignments/{site.school.assignments['exercise']}")
    q = page.locator(".question")
    assert q.count() == 4
    q.nth(0).locator("input").nth(1).check()       # the right sum
    q.nth(1).locator("input[value=false]").check()  # wrong on purpose
    q.nth(2).locator("input").nth(0).check()
    q.nth(2).locator("input").nth(2).check()
    q.nth(3).locator("input").fill("１２")          # full-width digits count
    page.dblclick("#submit-answers")
    result = page.locator("#exercise-result")
    page.wait_for_function("document.getElementById('exercise-result').textContent.indexOf('/') > 0")
    assert result.inner_text() == "得分 3 / 4"
    assert "答对了" in q.nth(0).locator(".feedback").inner_text()
    assert "再想想" in q.nth(1).locator(".feedback").inner_text()
    page.wait_for_timeout(500)
    assert attempts(site, site.school.assignments["exercise"], site.school.students["王小明"]["id"]) == 1


def test_student_hands_in_a_photo_and_a_too_large_file_is_refused_next_to_the_field(pages, site, tmp_path):
    page = pages.open(TABLET)
    student_login(page, site, "李小红")
    page.goto(f"{site.base}/student/assignments/{site.school.assignments['work']}")
    assert page.locator("#photo").get_attribute("capture") == "environment"
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024))  # the site allows 2 MB
    page.set_input_files("#photo", str(big))
    assert "文件太大" in page.locator("#photo-error").inner_text()
    photo = tmp_path / "photo.png"
    photo.write_bytes(png_photo())
    page.set_input_files("#photo", str(photo))
    page.locator("#photo-preview").wait_for(state="visible")
    page.fill("#text", "这是我的家")
    page.click("#submit-work")
    page.wait_for_function("document.getElementById('handin-result').textContent.length > 0")
    assert page.locator("#handin-result").inner_text() == "作业已交给老师。"
    db = open_db(site)
    try:
        rows = db.execute("select text, files from submissions where assignment_id = ?",
                          [site.school.assignments["work"]]).fetchall()
    finally:
        db.close()
    assert len(rows) == 1 and rows[0][0] == "这是我的家"
    files = json.loads(rows[0][1])
    assert len(files) == 1 and files[0]["mime"] == "image/jpeg"


def test_another_students_work_and_another_class_are_refused(pages, site):
    page = pages.open(TABLET)
    student_login(page, site, "张伟")
    response = page.goto(f"{site.base}/student/assignments/{site.school.assignments['other_class']}")
    assert response.status == 403
    assert "没有权限" in page.locator(".error-page").inner_text()
    other = site.school.students["李小红"]["id"]
    assert page.request.get(f"{site.base}/api/v1/students/{other}/home").status == 403


def test_expired_session_keeps_the_answers_and_sends_them_after_logging_in_again(pages, site):
    page = pages.open(TABLET)
    student_login(page, site, "张伟")
    url = f"{site.base}/student/assignments/{site.school.assignments['exercise']}"
    page.goto(url)
    page.locator(".question").nth(0).locator("input").nth(1).check()
    db = open_db(site)
    try:
        db.execute("update sessions set expires_at = 0")  # the school day ended
    finally:
        db.close()
    page.click("#submit-answers")
    page.wait_for_function("document.querySelector('#exercise-result a') !== null")
    assert "登录已过期" in page.locator("#exercise-result").inner_text()
    me = site.school.students["张伟"]["id"]
    assert attempts(site, site.school.assignments["exercise"], me) == 0
    assert page.evaluate("JSON.parse(localStorage.getItem('school-edge-outbox')).length") == 1
    student_login(page, site, "张伟")  # the kept answer goes out from the first page of this student, once
    page.wait_for_function("JSON.parse(localStorage.getItem('school-edge-outbox')).length === 0")
    assert page.locator("#net").inner_text() == "已重新连上，保存的答案已提交。"
    page.goto(url)
    assert "已经作答 1 次" in page.locator("#exercise").inner_text()
    assert attempts(site, site.school.assignments["exercise"], me) == 1
