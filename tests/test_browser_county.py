"""The county console in Debian's Chromium: every page as each role (with the refusals:
a viewer cannot approve, a school head sees only their school), a reviewer deciding
in the browser, on a laptop and on a tablet.

Screenshots go to a temporary folder, or to ``$COUNTY_SCREENSHOTS`` (``docs/screenshots``
to refresh the ones in the docs: ``COUNTY_SCREENSHOTS=docs/screenshots python3 -m pytest
tests/test_browser_county.py``)."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fixtures.browser import LAPTOP, TABLET
from fixtures.common import OTHER_SCHOOL, SCHOOL
from fixtures.console import CONSOLE_PASSWORD, LESSON

from hub_sync.hub.offers import Offers

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# what each role may open (bureau_admin: everything); the rest of the console refuses them
PAGES = {
    "admin": ["/console/", "/console/review", "/console/published", "/console/audit", "/console/accounts",
              "/console/fleet", "/console/reports"],
    "rev": ["/console/", "/console/review", "/console/published", "/console/audit", "/console/reports"],
    "tech": ["/console/", "/console/fleet"],
    "view": ["/console/", "/console/audit", "/console/reports"],
    "head": ["/console/", "/console/reports"],
}
EVERY = sorted({p for paths in PAGES.values() for p in paths})


def png(width: int = 320, height: int = 200) -> bytes:
    """A real PNG (a blue-green gradient) for the image preview."""
    rows = b"".join(b"\x00" + b"".join(bytes((30, (x * 255) // width, 140)) for x in range(width)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = Path(os.environ.get("COUNTY_SCREENSHOTS") or tmp_path_factory.mktemp("county-shots"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def snap(page, path: Path, full_page: bool = False) -> None:
    """A screenshot, written here (Playwright writing it would leave an executor thread behind)."""
    path.write_bytes(page.screenshot(full_page=full_page))


def login(page, base: str, name: str) -> None:
    page.goto(base + "/console/login")
    page.fill("#name", name)
    page.fill("#password", CONSOLE_PASSWORD)
    page.click("form.narrow button[type=submit]")
    page.wait_for_url(base + "/console/")


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_role_walks_its_pages_and_is_refused_the_rest(console_hub, pages, shots, name):
    base = console_hub.url
    console_hub.add_offer()
    page = pages.open(LAPTOP)
    login(page, base, name)
    shown = {urlsplit(a).path for a in page.eval_on_selector_all("header nav a", "els => els.map(e => e.href)")}
    assert shown == set(PAGES[name]), shown                    # the menu offers exactly what the role may open
    for path in PAGES[name]:
        answer = page.goto(base + path)
        assert answer.status == 200, (name, path)
        assert page.locator("main h1").count() >= 1
        for href in page.eval_on_selector_all("main a[href^='/console/']", "els => els.map(e => e.getAttribute('href'))"):
            if "." in href.rsplit("/", 1)[-1] or "/files/" in href:
                continue  # downloads and previews (exports are C2's tests; previews are tested below)
            followed = page.request.get(base + href)
            assert followed.status < 400 or href.startswith("/console/review/"), (name, path, href, followed.status)
    for path in set(EVERY) - set(PAGES[name]):
        answer = page.goto(base + path)
        assert answer.status == 403 and "没有权限" in page.inner_text("main"), (name, path)
    if name == "view":
        snap(page, shots / "county-refused.png")
        offer_id = Offers(console_hub.hub.db).list()[0].id
        answer = page.goto(f"{base}/console/review/{offer_id}")
        assert answer.status == 403 and page.locator("form#approve").count() == 0
        r = page.request.post(f"{base}/console/review/{offer_id}/approve", form={"channel": "math-1"})
        assert r.status in (400, 403) and Offers(console_hub.hub.db).get(offer_id).state == "pending"
    if name == "head":
        page.goto(base + "/console/reports")
        assert OTHER_SCHOOL not in page.content()
        answer = page.goto(f"{base}/console/reports?school={OTHER_SCHOOL}")
        assert answer.status == 403 and "本校" in page.inner_text("main")
        page.goto(f"{base}/console/reports?school={SCHOOL}")
        snap(page, shots / "county-reports-school-head.png")
    if name == "tech":
        page.goto(base + "/console/fleet")
        snap(page, shots / "county-fleet.png")


def test_a_reviewer_previews_edits_and_decides_in_the_browser(console_hub, pages, shots):
    base = console_hub.url
    offer_id = console_hub.add_offer(files={"picture.png": (png(), "image/png"), "lesson.html": (LESSON, "text/html")},
                                     title="钟表课件", kind="html")
    second = console_hub.add_offer(title="重复的课件")
    page = pages.open(LAPTOP)
    login(page, base, "rev")
    page.goto(base + "/console/review")
    snap(page, shots / "county-review.png")
    page.click(f"tr[data-offer='{offer_id}'] a")
    image = page.locator(".preview img")
    image.wait_for()
    assert page.evaluate("img => img.naturalWidth", image.element_handle()) == 320
    frame = page.frame_locator(".preview iframe[sandbox]")
    assert frame.locator("h1").inner_text() == "lesson"        # the lesson runs, in its sandbox
    page.fill("#m-grade", "二年级")
    page.click("text=保存修改")
    assert "已保存修改" in page.inner_text("main") and page.input_value("#m-grade") == "二年级"
    snap(page, shots / "county-offer.png", full_page=True)
    page.select_option("#channel", "math-1")
    page.click("form#approve button")
    assert "已通过" in page.inner_text("main")
    assert Offers(console_hub.hub.db).get(offer_id).channel == "math-1"
    page.goto(f"{base}/console/review/{second}")
    page.click("form#reject button")                           # no reason: the browser asks for one first
    assert Offers(console_hub.hub.db).get(second).state == "pending"
    page.fill("#reason", "与已有资源重复")
    page.click("form#reject button")
    assert "已退回" in page.inner_text("main") and Offers(console_hub.hub.db).get(second).reason == "与已有资源重复"
    page.goto(base + "/console/published")
    snap(page, shots / "county-published.png")
    page.goto(base + "/console/audit")
    assert page.locator("tr[data-entry]").count() >= 3
    snap(page, shots / "county-audit.png")


def test_the_console_on_a_tablet_in_english(console_hub, pages, shots):
    base = console_hub.url
    page = pages.open(TABLET, locale="en")
    page.goto(base + "/console/login")
    snap(page, shots / "county-login.png")
    login(page, base, "admin")
    page.click("header a.lang")
    assert page.locator("html").get_attribute("lang") == "en"
    page.goto(base + "/console/accounts")
    assert "Add an account" in page.inner_text("main")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= TABLET["width"]                             # nothing wider than the tablet
    snap(page, shots / "county-accounts-tablet-en.png", full_page=True)
