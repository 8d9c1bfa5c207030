"""Every link works: a crawler in Debian's Chromium follows every link and submits every
safe form of every page, as each role (not logged in, student, teacher, administrator,
technician, parent), and fails on any broken answer - of a page, or of the assets,
media, XHR and fetch requests the page makes (``page.on("response")``).

The school is the demo's kind of data: the sample library (every kind of resource and a
real video), a class with a video, an exercise and a photo hand-in assignment, answers,
hand-ins (one graded, one waiting), a teacher's upload, an announcement, messages between
a teacher and a parent, a learner transferred in with their space and one transferred out.

It runs on the LAN test bed (``fixtures/lan.py``): ``edge serve`` behind its nginx front in
the appliance namespace on 10.77.0.1, Playwright's driver and Chromium started inside the
clients namespace (``with lan.clients.inside():``), so every request crosses the veth pair
as a tablet's would.

The crawl, per role: log in through the login page as that person does, start where the
login lands (the role's home), then breadth first over same-origin ``a[href]`` and GET
forms, each URL once, at most ``MAX_PAGES_PER_ROLE`` (hitting the bound fails the test; it
never truncates silently). The six roles walk at once, each in its own browser context
(their logins take turns: the appliance checks two passwords at a time). Broken is any
answer of 400 or more, except a refusal (401/403) of the pages in ``ALLOWED_REFUSALS``
(the home page shows every visitor all its buttons); the refusals seen are in the report.
A script error in a page is broken too. Left out, on purpose:

* forms without ``method="get"``: the page's script posts them to the JSON API and they
  change state (answers, hand-ins, uploads, grades, messages, assignments, roster imports,
  logins, a new password). Each must say where it posts (``data-url``) or be one of
  ``FORMS_POSTED_BY_SCRIPT``; any other form fails the test, so this list stays complete.
* ``javascript:`` links (the error page's "back"), ``mailto:``/``tel:`` and other origins.
* the logout button (a POST by script): pressed once, after the crawl, and checked to
  land on its page and to end the session.
* there are no GET links that act (every action is a POST by script); the nearest,
  ``/lang/<code>?next=...``, only sets the language cookie and goes back: it is followed
  once per language, whatever ``next``.

A GET form is submitted as the browser would (``new FormData(form)``): as it is, and with
``SEARCH_TERM`` in its empty text fields, by every role; once per option of each of its
selects by ``FORM_VARIANTS_ROLE`` only (the library's filters answer alike for everyone).
Each (form, variant) once per role.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import DEMO_SCHOOL_CODE, DEMO_SCHOOL_NAME, load_sample_library
from edge_agent.demo.sample_video import add_sample_video
from edge_agent.spaces import const
from edge_agent.spaces.login import set_staff_password
from edge_agent.spaces.people import find_by_number, get_person
from edge_agent.spaces.roster_apply import apply_roster_change
from edge_agent.spaces.sessions import create_session
from edge_agent.wiring import create_served_app
from fixtures.browser import CHROMIUM, CHROMIUM_ARGS, TABLET, School, png_photo, prepare_school
from fixtures.lan import NETNS

pytestmark = [*NETNS, pytest.mark.browser]

MAX_PAGES_PER_ROLE = 150  # a role's whole site is well under this; more means a link loop or a runaway list
PAGE_TIMEOUT_MS = 10_000
SETTLE_TIMEOUT_S = 5.0  # how long requests a page started may take to be answered after its load event
SEARCH_TERM = "拼音"  # a word the sample library has, for a GET form's empty text fields
VIDEO_S = 2  # a real video, short: ffmpeg's time grows with its length
# The first samples of the demo's library hold every kind it has (lesson, audio, picture, exercise,
# PDF); with the video and an upload that is every viewer, and a crawl of every role well under a minute.
LIBRARY_COUNT = 7
PARENT_PHONE = "13800000001"  # 王小明's parent in fixtures.browser.ROSTER

# Pages whose refusal (401, 403) is not broken: the home page shows its buttons to every visitor,
# and a role that may not open one gets a page saying who may.
ALLOWED_REFUSALS = {"/technician": "the home page's 设备管理 button: technicians and administrators only"}
# The role that also submits a GET form once per option of each select (see the module's docstring).
FORM_VARIANTS_ROLE = "anonymous"
# Forms the page's script posts to the JSON API without a data-url of their own.
FORMS_POSTED_BY_SCRIPT = {
    "staff-login": "logs in (POST /api/v1/login/staff)",
    "first-password": "sets a new password (POST /api/v1/password)",
    "student-login": "logs in (POST /api/v1/login/student)",
}


# --- the school -------------------------------------------------------------------------------

def prepare_linked_school(data_dir: Path) -> School:
    """The sample library, a short real video and the test school with something on every page."""
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        appliance.set_identity(school_code=DEMO_SCHOOL_CODE, school_name=DEMO_SCHOOL_NAME)
        load_sample_library(appliance, LIBRARY_COUNT)
        assert add_sample_video(appliance, seconds=VIDEO_S) is not None, "this test needs ffmpeg (scripts/install.sh)"
        school = prepare_school(appliance)
        add_school_life(appliance, school)
        return school
    finally:
        appliance.close()


def add_school_life(appliance: Appliance, school: School) -> None:
    """Answers, hand-ins, a grade, progress, an upload, messages and transfers, through the JSON API."""
    db = appliance.db
    app = create_served_app(appliance.config, appliance=appliance)
    parent = find_by_number(db, PARENT_PHONE)
    set_staff_password(db, parent.id, school.password, must_change=False)
    teacher = find_by_number(db, school.teacher).id
    ming, wei = school.students["王小明"]["id"], school.students["张伟"]["id"]

    def call(person_id: int, method: str, url: str, **kw) -> dict:
        token, csrf = create_session(db, get_person(db, person_id), "test")
        headers = {"X-Requested-With": "test", const.CSRF_HEADER: csrf, "Cookie": f"{const.SESSION_COOKIE}={token}"}
        r = app.test_client(use_cookies=False).open(url, method=method, headers=headers, **kw)
        body = r.get_json()
        r.close()
        assert r.status_code < 300, (url, r.status_code, body)
        return body

    exercise, work = school.assignments["exercise"], school.assignments["work"]
    for student, answers in ((ming, {"q1": 1, "q2": True, "q3": [0, 2], "q4": "12"}), (wei, {"q1": 0, "q2": False})):
        call(student, "POST", f"/api/v1/assignments/{exercise}/answers", json={"answers": answers})
        call(student, "POST", f"/api/v1/assignments/{work}/submissions", content_type="multipart/form-data",
             data={"text": "我的家", "files": (io.BytesIO(png_photo(320, 240)), "home.png")})
    graded = call(teacher, "GET", f"/api/v1/assignments/{work}/submissions")["submissions"][-1]["id"]
    call(teacher, "POST", f"/api/v1/submissions/{graded}/grade", json={"score": 90, "comment": "画得真好"})
    call(ming, "PUT", "/api/v1/progress/sample-00001", json={"state": "in_progress", "percent": 40, "position": 0})
    call(teacher, "POST", "/api/v1/uploads", content_type="multipart/form-data",
         data={"file": (io.BytesIO(png_photo(200, 150)), "map.png"), "title": "我们的校园地图", "subject": "语文"})
    call(teacher, "POST", f"/api/v1/classes/{school.class_id}/announcements", json={"subject": "通知", "body": "明天带尺子"})
    call(teacher, "POST", "/api/v1/messages", json={"recipient_id": parent.id, "body": "王小明今天表现很好"})
    call(parent.id, "POST", "/api/v1/messages", json={"recipient_id": teacher, "body": "谢谢老师"})
    apply_roster_change(db, {"kind": "transfer_in", "row": {
        "name": "孙转学", "number": "G110101201501010055", "gender": "女", "grade": "一年级", "classes": ["一年级1班"],
        "role": "学生"}, "space": {
        "progress": [{"resource_id": "sample-00002", "state": "in_progress", "percent": 30, "position": 0,
                      "updated_at": time.time()}],
        "history": [{"uid": "old-school-answer-1", "kind": "answer", "created_at": time.time() - 86400,
                     "data": {"title": "旧学校的练习", "answers": {}, "score": 3, "total": 4}}]}})
    apply_roster_change(db, {"kind": "transfer_out", "number": "G110101201501010044"})


# --- the crawler ------------------------------------------------------------------------------

PAGE_FACTS = """() => ({
  links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
  logouts: Array.from(document.querySelectorAll("button.logout"), b => b.dataset.to),
  forms: Array.from(document.forms, (f, n) => {
    const method = (f.getAttribute("method") || "").toLowerCase();
    const name = f.id || f.dataset.url || f.dataset.urlTemplate || ("form " + n);
    const out = {name: name, method: method, posts: f.dataset.url || f.dataset.urlTemplate || "", action: f.action, variants: []};
    if (method !== "get") { return out; }
    const query = data => new URLSearchParams(data).toString();
    out.variants.push(["as it is", query(new FormData(f)), false]);
    for (const el of f.elements) {
      if (!el.name || el.disabled) { continue; }
      if (el.tagName === "SELECT") {
        for (const o of el.options) { const d = new FormData(f); d.set(el.name, o.value); out.variants.push([el.name + "=" + o.value, query(d), true]); }
      } else if ((el.type === "search" || el.type === "text") && !el.value) {
        const d = new FormData(f); d.set(el.name, %r); out.variants.push([el.name + "=" + %r, query(d), false]);
      }
    }
    return out;
  }),
})""" % (SEARCH_TERM, SEARCH_TERM)


@dataclass
class Crawl:
    """One role's walk: what it visited, what answered badly, what it left out and why."""

    role: str
    base: str
    visited: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # what -> why
    answered_types: set[str] = field(default_factory=set)  # resource types answered: document, script, media, fetch...
    logout_from: tuple[str, str] | None = None  # (page, where its logout button leads)

    def __post_init__(self) -> None:
        self.origin = urlsplit(self.base).netloc
        self.queue: deque[tuple[str, str]] = deque()  # (url, found on)
        self.seen: set[str] = set()
        self.forms_tried: set[tuple[str, str]] = set()
        self.pending: set = set()  # requests of the current page not answered yet
        self.current = self.found_on = "(login)"

    # the page's requests

    def watch(self, page) -> None:
        page.on("request", lambda request: self.pending.add(request))
        page.on("requestfailed", lambda request: self.pending.discard(request))
        page.on("response", self.answered)
        page.on("pageerror", lambda exc: self.script_errors.append(f"{exc} (on {self.current})"))

    def answered(self, response) -> None:
        request = response.request
        self.pending.discard(request)
        self.answered_types.add(request.resource_type)
        where = (f"the page, linked on {self.found_on}" if request.resource_type == "document" and response.frame.parent_frame is None
                 else f"{request.resource_type}, on {self.current}")
        self.judge(response.status, response.url, f"{request.method} {self.path(response.url)} ({where})")

    def judge(self, status: int, url: str, what: str) -> None:
        if status in (401, 403) and urlsplit(url).path in ALLOWED_REFUSALS:
            self.refused.append(f"{status} {what}")
        elif status >= 400:
            self.broken.append(f"{status} {what}")

    async def settle(self, page) -> None:
        """Let the requests the page started (scripts' fetches, media, frames) be answered."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while self.pending and time.monotonic() < deadline:
            await page.wait_for_timeout(20)

    # what to visit

    def path(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(("", "", parts.path, parts.query, "")) if parts.netloc == self.origin else url

    def add(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            self.left_out[f"{parts.scheme}: links"] = "not a page (the error page's back link is javascript:)"
            return
        if parts.netloc != self.origin:
            self.left_out[url] = "another origin"
            return
        url = urlunsplit(parts._replace(fragment=""))
        # the language switch sets a cookie and goes back to `next`: once per language is every case
        key = parts.path if parts.path.startswith("/lang/") else url
        if key not in self.seen:
            self.seen.add(key)
            self.queue.append((url, self.current))

    def forms(self, facts: dict) -> None:
        for form in facts["forms"]:
            if form["method"] != "get":
                reason = FORMS_POSTED_BY_SCRIPT.get(form["name"]) or (form["posts"] and f"posted by script to {form['posts']}")
                if not reason:
                    self.broken.append(f"a form that is neither GET nor posted by script: {form['name']} (on {self.current})")
                self.left_out[f"form {form['name']}"] = reason or "?"
                continue
            for variant, query, an_option in form["variants"]:
                if an_option and self.role != FORM_VARIANTS_ROLE:
                    continue
                if (form["action"], variant) not in self.forms_tried:
                    self.forms_tried.add((form["action"], variant))
                    self.add(form["action"].split("?")[0] + "?" + query)

    # the walk

    async def run(self, page, start: str) -> None:
        self.add(start)
        while self.queue:
            if len(self.visited) >= MAX_PAGES_PER_ROLE:
                raise AssertionError(f"{self.role}: more than {MAX_PAGES_PER_ROLE} pages (a link loop, or raise"
                                     f" MAX_PAGES_PER_ROLE); still queued: {[self.path(u) for u, _ in list(self.queue)[:10]]}")
            url, found_on = self.queue.popleft()
            await self.visit(page, url, found_on)

    async def visit(self, page, url: str, found_on: str) -> None:
        self.current, self.found_on = self.path(url), found_on
        self.visited.append(self.current)
        try:
            response = await page.goto(url, wait_until="load")
        except PlaywrightError as exc:  # a file the browser downloads instead of showing
            if "Download is starting" not in exc.message:
                raise
            download = await page.request.get(url)
            self.judge(download.status, url, f"GET {self.current} (a download, linked on {found_on})")
            return
        await self.settle(page)
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            return  # a file the browser shows (a picture, a PDF): nothing to follow
        facts = await page.evaluate(PAGE_FACTS)
        for link in facts["links"]:
            self.add(link)
        self.forms(facts)
        if facts["logouts"]:
            self.logout_from = (url, facts["logouts"][0])

    async def log_out(self, page) -> None:
        """Press the logout button once, at the end: it must land on its page and end the session."""
        url, to = self.logout_from
        self.current = f"logout on {self.path(url)}"
        await page.goto(url, wait_until="load")
        async with page.expect_navigation(url=self.base + to, wait_until="load"):
            await page.click("button.logout")
        await self.settle(page)
        session = await (await page.request.get(self.base + "/api/v1/session")).json()
        assert not session.get("logged_in"), f"{self.role}: still logged in after pressing 退出 Log out"


# --- the test ---------------------------------------------------------------------------------

ROLES = ("anonymous", "student", "teacher", "admin", "technician", "parent")


async def log_in(page, base: str, school: School, role: str) -> None:
    """Log in through the login page as this role's person does (see fixtures.browser's helpers)."""
    if role == "student":
        await page.goto(base + "/student/login")
        await page.click("text=一年级1班")
        await page.click(".people >> text=王小明")
        await page.fill("#pin", school.students["王小明"]["pin"])
        await page.click("#login-go")
        await page.wait_for_url(base + "/student")
    elif role != "anonymous":
        number = {"teacher": school.teacher, "admin": school.admin, "technician": school.technician,
                  "parent": PARENT_PHONE}[role]
        await page.goto(base + "/login")
        await page.fill("#number", number)
        await page.fill("#password", school.password)
        await page.click("#staff-go")
        await page.wait_for_url(lambda url: "/login" not in url)


async def crawl_role(browser, base: str, school: School, role: str, logins: asyncio.Lock) -> Crawl:
    """Log in as ``role`` in a fresh context, walk from where the login lands, log out.
    Logins take turns: the appliance checks at most two passwords at once and answers others 503."""
    context = await browser.new_context(viewport=TABLET, locale="zh-CN")
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        page = await context.new_page()
        crawl = Crawl(role, base)
        crawl.watch(page)
        async with logins:
            await log_in(page, base, school, role)
        await crawl.run(page, page.url if role != "anonymous" else base + "/")
        if crawl.logout_from:
            await crawl.log_out(page)
        return crawl
    finally:
        await context.close()


async def crawl_every_role(base: str, school: School) -> list[Crawl]:
    """Every role at once, each in its own browser context (the roles share nothing but the appliance)."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            logins = asyncio.Lock()
            return list(await asyncio.gather(*(crawl_role(browser, base, school, role, logins) for role in ROLES)))
        finally:
            await browser.close()


def test_every_link_and_safe_form_answers_for_every_role_on_the_lan(lan, tmp_path):
    school = prepare_linked_school(tmp_path / "data")
    server = lan.serve_edge(tmp_path / "data")
    with lan.clients.inside():  # Playwright's driver and Chromium are born in the clients' namespace
        crawls = {c.role: c for c in asyncio.run(crawl_every_role(server.base, school))}

    report = "\n".join(f"{c.role}: {len(c.visited)} pages; refused (allowed): {c.refused}; left out: {c.left_out}"
                       for c in crawls.values())
    problems = [f"{c.role}: {b}" for c in crawls.values() for b in c.broken]
    problems += [f"{c.role}: script error {e}" for c in crawls.values() for e in c.script_errors]
    assert not problems, "broken:\n  " + "\n  ".join(problems) + "\n" + report
    # every role really walked its part of the site (a crawl that stopped at its home proves nothing),
    # and what its pages loaded was heard: stylesheets, scripts, pictures, media, frames and fetches
    visited = {role: set(c.visited) for role, c in crawls.items()}
    assert {"/", "/student/login", "/login", "/library", "/library/sample-video-00001", "/project/sample-00004"} <= visited["anonymous"]
    assert {"/student", "/student/messages"} | {f"/student/assignments/{a}" for a in ("1", "2", "3")} <= visited["student"]
    assert {"/teacher", f"/teacher/classes/{school.class_id}", "/teacher/grading", "/teacher/uploads",
            "/teacher/messages", "/teacher/assign/sample-00004"} <= visited["teacher"]
    assert "/technician" in visited["technician"] and f"/teacher/classes/{school.class_id}" in visited["admin"]
    assert {"document", "stylesheet", "script", "image", "media", "fetch"} <= crawls["student"].answered_types, report
    assert all(c.logout_from for c in crawls.values() if c.role != "anonymous"), report
