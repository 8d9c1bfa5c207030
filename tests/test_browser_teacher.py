"""A teacher on a laptop, in a real browser: log in, assign, watch progress change, grade a photo,
upload a resource and message the class (with script in them shown as text), print login cards."""

import re

import pytest

from fixtures.browser import LAPTOP, TABLET, open_db, png_photo, staff_login, student_login

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served site and Chromium: seconds per test

EVIL = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1;alert(1)">'


def csrf(page, site):
    return page.request.get(site.base + "/api/v1/session").json()["csrf_token"]


def test_teacher_assigns_an_exercise_and_sees_the_class_progress_change(pages, site):
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, site.school.teacher)
    assert teacher.url == site.base + "/teacher"
    teacher.goto(site.base + "/library/sample-00009")
    teacher.click("text=布置给班级")
    teacher.select_option("#class", str(site.school.class_id))
    teacher.click("#assign-go")
    teacher.wait_for_function("document.querySelector('.form-result').textContent.length > 0")
    assert "已布置" in teacher.locator(".form-result").inner_text()
    teacher.goto(f"{site.base}/teacher/classes/{site.school.class_id}")
    row = teacher.locator("tr", has_text="5以内的加法 练习")
    assert row.locator(".done-count").inner_text() == "0 / 3"

    student = pages.open(TABLET)
    student_login(student, site, "张伟")
    student.click("text=5以内的加法 练习")
    student.wait_for_url(re.compile(r"/student/assignments/\d+"))
    student.locator(".question").nth(0).locator("input").nth(1).check()
    student.click("#submit-answers")
    student.wait_for_function("document.getElementById('exercise-result').textContent.indexOf('/') > 0")

    teacher.reload()
    row = teacher.locator("tr", has_text="5以内的加法 练习")
    assert row.locator(".done-count").inner_text() == "1 / 3"
    accuracy = teacher.locator("section", has_text="每题正确率：5以内的加法 练习")
    assert "100% (1/1)" in accuracy.locator("tr").nth(0).inner_text()
    assert "0% (0/1)" in accuracy.locator("tr").nth(1).inner_text()
    assert "张伟" in teacher.locator("p.bad").inner_text()  # 25%: needs help


def test_teacher_grades_a_photo_and_the_student_sees_the_score(pages, site):
    student = pages.open(TABLET)
    student_login(student, site, "王小明")
    url = f"{site.base}/api/v1/assignments/{site.school.assignments['work']}/submissions"
    r = student.request.post(url, headers={"X-CSRF-Token": csrf(student, site)},
                             multipart={"text": "我的画", "files": {"name": "home.png", "mimeType": "image/png", "buffer": png_photo()}})
    assert r.status == 201, r.text()
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, site.school.teacher)
    teacher.goto(site.base + "/teacher/grading")
    item = teacher.locator("li.submission", has_text="王小明")
    assert "我的画" in item.inner_text()
    teacher.wait_for_function("[...document.querySelectorAll('img.work-photo')].every(i => i.complete && i.naturalWidth > 0)")
    item.locator("input[name=score]").fill("90")
    item.locator("input[name=comment]").fill("画得真好")
    item.locator("button[type=submit]").dblclick()
    item.wait_for(state="detached")
    student.goto(f"{site.base}/student/assignments/{site.school.assignments['work']}")
    assert "老师打分 90" in student.locator("main").inner_text() and "画得真好" in student.locator("main").inner_text()


def test_script_in_an_upload_title_and_in_messages_is_shown_as_text_and_parents_get_messages(pages, site, tmp_path):
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, site.school.teacher)
    teacher.goto(site.base + "/teacher/uploads")
    picture = tmp_path / "pic.png"
    picture.write_bytes(png_photo(64, 48))
    teacher.set_input_files("#up-file", str(picture))
    teacher.fill("#up-title", EVIL)
    teacher.fill("#up-subject", "美术")
    teacher.click("#upload-go")
    teacher.wait_for_load_state()
    teacher.locator("td", has_text="<script>window.pwned=1</script>").first.wait_for()
    assert "仅本校" in teacher.locator("tr", has_text="window.pwned").inner_text()
    teacher.goto(site.base + "/library?subject=美术")
    assert EVIL in teacher.locator(".card .title").all_inner_texts()
    teacher.goto(f"{site.base}/teacher/classes/{site.school.class_id}")
    teacher.fill("#ann-subject", EVIL)
    teacher.fill("#ann-body", EVIL)
    teacher.locator("form", has=teacher.locator("#ann-body")).locator("button[type=submit]").click()
    teacher.wait_for_function("[...document.querySelectorAll('.form-result')].some(p => p.textContent.indexOf('通知已发出') >= 0)")

    teacher.select_option("#parent", label="王爸爸（王小明 的家长）")
    teacher.fill("#parent-body", "王小明今天表现很好")
    teacher.locator("form", has=teacher.locator("#parent-body")).locator("button[type=submit]").click()
    teacher.wait_for_function("[...document.querySelectorAll('.form-result')].some(p => p.textContent.indexOf('消息已发出') >= 0)")
    db = open_db(site)
    try:
        assert db.execute("select count(*) from messages where body = '王小明今天表现很好' and recipient_id is not null").fetchone()[0] == 1
    finally:
        db.close()

    student = pages.open(TABLET)
    student_login(student, site, "李小红")
    student.goto(site.base + "/student/messages")
    assert student.locator(".message p").first.inner_text() == EVIL
    for page in (teacher, student):
        assert page.evaluate("window.pwned") is None


def test_too_large_upload_is_refused_next_to_the_field_and_nothing_is_stored(pages, site, tmp_path):
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, site.school.teacher)
    teacher.goto(site.base + "/teacher/uploads")
    before = teacher.locator("tbody tr").count()
    big = tmp_path / "lesson.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024))
    teacher.set_input_files("#up-file", str(big))
    teacher.fill("#up-title", "很大的文件")
    teacher.click("#upload-go")
    assert "文件太大" in teacher.locator("#up-file-error").inner_text()
    r = teacher.request.post(site.base + "/api/v1/uploads", headers={"X-CSRF-Token": csrf(teacher, site)},
                             multipart={"title": "很大的文件", "kind": "document",
                                        "file": {"name": "lesson.pdf", "mimeType": "application/pdf", "buffer": big.read_bytes()}})
    assert r.status == 413 and "太大" in r.json()["error"]["message"]
    teacher.reload()
    assert teacher.locator("tbody tr").count() == before


def test_printed_login_card_logs_the_student_in(pages, site):
    teacher = pages.open(LAPTOP)
    staff_login(teacher, site, site.school.teacher)
    teacher.goto(f"{site.base}/teacher/classes/{site.school.class_id}")
    teacher.click("#print-cards")
    assert "旧的登录卡就不能用了" in teacher.locator("#print-cards").inner_text()
    teacher.click("#print-cards")
    teacher.wait_for_url(re.compile(r"^blob:"))
    assert teacher.locator(".card svg").count() == 3 and "王小明" in teacher.locator("body").inner_text()
    cards = teacher.request.post(f"{site.base}/api/v1/classes/{site.school.class_id}/qr-cards",
                                 headers={"X-CSRF-Token": csrf(teacher, site)}).json()["cards"]
    card = next(c for c in cards if c["name"] == "李小红")
    tablet = pages.open(TABLET)
    tablet.goto(card["url"])
    tablet.wait_for_url(site.base + "/student")
    assert tablet.locator("h1").inner_text() == "李小红 的学习空间"
