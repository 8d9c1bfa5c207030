"""Real-browser fixtures: Debian's Chromium driven by Playwright, and a real appliance.

Import the fixtures you use into a test module (``from browser_fixtures import ...``).
The browser is shared by the whole session; each test gets fresh contexts (no
cookies, no storage, no service worker carried over) and fails if a page threw
an uncaught script error or opened a dialog (which is how injected script shows).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from conftest import ServerProcess, free_port
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo import DEMO_SCHOOL_CODE, DEMO_SCHOOL_NAME, load_sample_library
from edge_agent.sample_video import add_sample_video

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
TABLET = {"width": 800, "height": 1280}
LAPTOP = {"width": 1366, "height": 768}
SCREEN = {"width": 1920, "height": 1080}


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def prepare_site(data_dir: Path) -> Appliance:
    """A data folder with the sample library and the sample video; returns it opened."""
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    appliance.set_identity(school_code=DEMO_SCHOOL_CODE, school_name=DEMO_SCHOOL_NAME)
    load_sample_library(appliance)
    add_sample_video(appliance)
    return appliance


class Site:
    """A real appliance server; ``restart()`` brings it back on the same port and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
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
    prepare_site(data_dir).close()
    s = Site(data_dir).start()
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
