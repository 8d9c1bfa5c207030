"""Real-browser fixtures: Debian's Chromium driven by Playwright, and a real appliance.

Import the fixtures you use into a test module (``from browser_fixtures import pages, site``);
``browser`` lives in conftest.py because it is shared by the whole session; each test gets fresh contexts (no
cookies, no storage, no service worker carried over) and fails if a page threw
an uncaught script error or opened a dialog (which is how injected script shows).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from conftest import ServerProcess, free_port
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import DEMO_SCHOOL_CODE, DEMO_SCHOOL_NAME, load_sample_library
from edge_agent.demo.sample_video import add_sample_video

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
TABLET = {"width": 800, "height": 1280}
LAPTOP = {"width": 1366, "height": 768}
SCREEN = {"width": 1920, "height": 1080}


def launch_browser():
    """Generator behind the module fixture ``browser`` in conftest.py."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


ROSTER = """姓名,学籍号,教师编号,性别,年级,班级,角色,家长电话,家长姓名
王小明,G110101201501010011,,男,一年级,一年级1班,学生,13800000001,王爸爸
李小红,G110101201501010022,,女,一年级,一年级1班,学生,,
张伟,G110101201501010033,,男,一年级,一年级1班,学生,,
陈静,G110101201501010044,,女,一年级,一年级2班,学生,,
张老师,,T0001,女,,一年级1班,班主任,,
赵技术,,T0099,男,,,技术员,,
钱校长,,T0100,男,,,管理员,,
"""
PASSWORD = "classroom-pass-1"


@dataclass
class School:
    """Who is in the test school and how they log in (made at test time, never committed)."""

    class_id: int = 0
    other_class_id: int = 0
    students: dict = field(default_factory=dict)  # name -> {"id", "pin" | "pictures"}
    teacher: str = "T0001"
    technician: str = "T0099"
    admin: str = "T0100"
    password: str = PASSWORD
    assignments: dict = field(default_factory=dict)  # kind -> id


def prepare_school(appliance: Appliance) -> School:
    """Roster, login secrets and three assignments (video, exercise, photo work) through the spaces' library."""
    from edge_agent.spaces.assignments import create_assignment
    from edge_agent.spaces.login import reset_student_secret, set_staff_password
    from edge_agent.spaces.people import all_classes, find_by_number
    from edge_agent.spaces.roster_apply import import_roster

    import_roster(appliance.db, ROSTER.encode("utf-8"))
    school = School()
    classes = {c["name"]: c["id"] for c in all_classes(appliance.db)}
    school.class_id, school.other_class_id = classes["一年级1班"], classes["一年级2班"]
    for number in (school.teacher, school.technician, school.admin):
        set_staff_password(appliance.db, find_by_number(appliance.db, number).id, PASSWORD, must_change=False)
    teacher = find_by_number(appliance.db, school.teacher)
    for number, kind in (("G110101201501010011", "pin"), ("G110101201501010022", "picture"),
                         ("G110101201501010033", "pin"), ("G110101201501010044", "pin")):
        person = find_by_number(appliance.db, number)
        secret = reset_student_secret(appliance.db, teacher, person, kind)
        school.students[person.name] = {"id": person.id, **{k: secret[k] for k in ("pin", "pictures") if k in secret}}
    for kind, body in (("video", {"resource_id": "sample-video-00001"}), ("exercise", {"resource_id": "sample-00004"}),
                       ("work", {"title": "画一画你的家"})):
        if kind == "video" and appliance.catalogue.search("", kind="video")[0] == 0:
            continue  # fast tests without ffmpeg's video
        school.assignments[kind] = create_assignment(appliance.db, teacher, school.class_id, body)["id"]
    school.assignments["other_class"] = create_assignment(appliance.db, teacher, school.other_class_id,
                                                          {"title": "二班的作业"})["id"]
    return school


def prepare_site(data_dir: Path, settings: dict | None = None) -> tuple[Appliance, School]:
    """A data folder with the sample library, the sample video and a school; returns it opened."""
    if settings:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "settings.json").write_text(json.dumps(settings), "utf-8")
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    appliance.set_identity(school_code=DEMO_SCHOOL_CODE, school_name=DEMO_SCHOOL_NAME)
    load_sample_library(appliance)
    assert add_sample_video(appliance) is not None, "the browser tests need ffmpeg (scripts/install.sh installs it)"
    return appliance, prepare_school(appliance)


class Site:
    """A real appliance server; ``restart()`` brings it back on the same port and data."""

    def __init__(self, data_dir: Path, school: School | None = None) -> None:
        self.data_dir = data_dir
        self.school = school
        self.port = free_port()
        self.server: ServerProcess | None = None
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> "Site":
        self.server = ServerProcess(["edge", "serve", "--data", str(self.data_dir), "--port", str(self.port),
                                     "--no-announce"], self.port).wait()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("site") / "data"
    appliance, school = prepare_site(data_dir, {"max_upload_mb": 2})
    appliance.close()
    s = Site(data_dir, school).start()
    yield s
    s.stop()


class Pages:
    """Opens pages in fresh browser contexts and records what went wrong in them."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.contexts = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []

    def open(self, viewport: dict = TABLET, locale: str = "zh-CN", **kw):
        context = self.browser.new_context(viewport=viewport, locale=locale, has_touch=viewport is TABLET, **kw)
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.set_default_timeout(10_000)
        return page

    def close(self) -> None:
        for c in self.contexts:
            c.close()


@pytest.fixture
def pages(browser):
    p = Pages(browser)
    yield p
    p.close()
    assert p.errors == [], f"script errors in the page: {p.errors}"
    assert p.dialogs == [], f"a page opened a dialog (injected script?): {p.dialogs}"


def staff_login(page, site: Site, number: str) -> None:
    """Log a staff member in through the login page."""
    page.goto(site.base + "/login")
    page.fill("#number", number)
    page.fill("#password", site.school.password)
    page.click("#staff-go")
    page.wait_for_url(lambda url: "/login" not in url)


def student_login(page, site: Site, name: str) -> None:
    """Log a student in the way a child does: class, name, then PIN or pictures."""
    who = site.school.students[name]
    page.goto(site.base + "/student/login")
    page.click("text=一年级1班")
    page.click(f".people >> text={name}")
    if "pin" in who:
        page.fill("#pin", who["pin"])
    else:
        for picture in who["pictures"]:
            page.click(f"button[data-pic={picture}]")
    page.click("#login-go")
    page.wait_for_url(site.base + "/student")


def api_login(page, site: Site, number: str) -> None:
    """Log a staff member in without the page (the page's own login is tested elsewhere)."""
    r = page.request.post(site.base + "/api/v1/login/staff", data={"number": number, "password": site.school.password},
                          headers={"X-Requested-With": "test"})
    assert r.ok, r.text()


def png_photo(width: int = 640, height: int = 480) -> bytes:
    """A real PNG (a coloured gradient), like a photo a tablet camera hands over."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 120)) for x in range(width))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def open_db(site: Site):
    """The appliance database of a running site, for checking what was recorded."""
    from hub_sync.core.sqlite_db import open_db as _open

    return _open(site.data_dir / "edge.db")
