"""Take the README's screenshots of the classroom pages in Debian's Chromium.

    python3 scripts/screenshots.py [--out docs/screenshots]

Makes a demo appliance in a temporary folder (sample library, sample video, the
demo roster with made-up names), gives it some learning activity, serves it
with ``school-edge edge serve`` on a free loopback port and photographs the key
pages at the sizes they are used at: a tablet (800x1280), a laptop (1366x768)
and the classroom screen (1920x1080). Then look at every picture: tofu boxes
instead of Chinese or a broken layout is a failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))  # the bench scripts' way of starting the appliance
from local_server import free_port, start_edge, stop  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
TABLET, LAPTOP, SCREEN = {"width": 800, "height": 1280}, {"width": 1366, "height": 768}, {"width": 1920, "height": 1080}
MAX_BYTES = 300 * 1024


def prepare(data_dir: Path, port: int) -> dict:
    """The demo appliance plus some activity, so the charts have something to show."""
    sys.path.insert(0, str(REPO))
    from edge_agent.demo.run import prepare_demo
    from edge_agent.spaces.answers import submit_answers
    from edge_agent.spaces.assignments import create_assignment, get_assignment
    from edge_agent.spaces.people import class_students, find_by_number
    from edge_agent.demo.sample_roster import load_sample_roster

    appliance = prepare_demo(data_dir, "127.0.0.1", port)
    creds = load_sample_roster(appliance)
    db = appliance.db
    teacher = find_by_number(db, "t001")
    class_id = creds["class_id"]
    video = create_assignment(db, teacher, class_id, {"resource_id": "sample-video-00001"}) \
        if appliance.catalogue.search("", kind="video")[0] else None
    create_assignment(db, teacher, class_id, {"title": "画一画你的家", "due_at": time.time() + 2 * 86400})
    exercise = db.execute("select id from assignments where class_id = ? and kind = 'exercise'", [class_id]).fetchone()[0]
    a = get_assignment(db, exercise)
    right = {"q1": 1, "q2": True, "q3": [0, 2], "q4": "12"}
    for n, student in enumerate(class_students(db, class_id)[2:14]):
        answers = dict(right)
        if n % 3 == 0:
            answers["q3"] = [0]
        if n % 4 == 1:
            answers["q2"] = False
        if n % 5 == 2:
            answers["q4"] = "10"
        submit_answers(db, appliance.store, student, a, answers)
    appliance.close()
    creds["video_assignment"] = video["id"] if video else None
    creds["exercise_assignment"] = exercise
    return creds


def shoot(page, out: Path, name: str, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=full_page)
    size = path.stat().st_size
    print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  {size // 1024} KB")
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is larger than {MAX_BYTES // 1024} KB")


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="school-edge-shots-") as tmp:
        data_dir = Path(tmp) / "data"
        creds = prepare(data_dir, port)
        server = start_edge(data_dir, port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
                tablet = browser.new_context(viewport=TABLET, locale="zh-CN", has_touch=True).new_page()
                tablet.goto(base + "/student/login")
                tablet.click(".people a")
                shoot(tablet, out, "student-login")
                name, pin = creds["students"][0]
                tablet.click(f".people >> text={name}")
                tablet.fill("#pin", pin)
                tablet.click("#login-go")
                tablet.wait_for_url(base + "/student")
                shoot(tablet, out, "student-home")
                tablet.goto(f"{base}/student/assignments/{creds['exercise_assignment']}")
                q = tablet.locator(".question")
                q.nth(0).locator("input").nth(1).check()
                q.nth(1).locator("input[value=true]").check()
                q.nth(2).locator("input").nth(0).check()
                q.nth(3).locator("input").fill("十")
                tablet.click("#submit-answers")
                tablet.wait_for_function("document.getElementById('exercise-result').textContent.indexOf('/') > 0")
                shoot(tablet, out, "exercise-player", full_page=True)
                tablet.goto(base + "/library?subject=语文")
                shoot(tablet, out, "library")

                laptop = browser.new_context(viewport=LAPTOP, locale="zh-CN").new_page()
                for role, url, shot in (("teacher", f"/teacher/classes/{creds['class_id']}", "teacher-class-progress"),
                                        ("technician", "/technician", "technician-status")):
                    ctx = browser.new_context(viewport=LAPTOP, locale="zh-CN")
                    page = ctx.new_page()
                    page.goto(base + "/login")
                    page.fill("#number", creds[role][0])
                    page.fill("#password", creds[role][1])
                    page.click("#staff-go")
                    page.wait_for_url(lambda u: "/login" not in u)
                    page.goto(base + url)
                    if shot == "teacher-class-progress":
                        page.locator("#students-h").scroll_into_view_if_needed()
                        page.evaluate("window.scrollTo(0, 0)")
                    shoot(page, out, shot)
                    ctx.close()
                laptop.goto(base + "/library?lang=en&subject=数学")
                shoot(laptop, out, "library-english")

                screen = browser.new_context(viewport=SCREEN, locale="zh-CN").new_page()
                target = "sample-video-00001" if creds["video_assignment"] else "sample-00003"
                screen.goto(f"{base}/project/{target}")
                if creds["video_assignment"]:
                    screen.wait_for_function("document.getElementById('media').readyState >= 2")
                    screen.evaluate("var m = document.getElementById('media'); m.currentTime = 4")
                    screen.wait_for_function("!document.getElementById('media').seeking")
                shoot(screen, out, "projection")
                browser.close()
        finally:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    run(parser.parse_args().out)


if __name__ == "__main__":
    main()
