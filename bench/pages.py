#!/usr/bin/env python3
"""Benchmark: how many bytes the student home page costs a tablet, measured by the browser.

In a temporary folder: the demo appliance (sample library, sample video, demo
roster) served by the real CLI (``school-edge edge serve``) on a free loopback
port. Debian's Chromium (Playwright, headless, 800x1280) logs a student in
through the JSON API, then opens ``/student`` twice in the same browser
profile: once with an empty cache (first load) and once again (later load).
Every response's bytes on the wire come from Chromium's own network log (the
DevTools protocol's ``Network.loadingFinished.encodedDataLength``: headers and
body as transferred, 0 for what the memory or disk cache answered). The service
worker is blocked for the measurement, because its own fetches would not appear
in the page's log (and a page it answers would count as 0 bytes).

Prints a table of the requests, then last
``student_home_first_kb=<float> student_home_repeat_kb=<float>`` (goals: ≤ 150 and ≤ 20).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from local_server import free_port, start_edge, stop  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def measure(page, cdp, url: str) -> list[tuple[str, int]]:
    """Load ``url`` and return (url, bytes transferred) for each request the page made.

    Use a fresh CDP session per measurement: its listeners see only this load."""
    urls: dict[str, str] = {}
    sizes: dict[str, int] = {}
    cdp.on("Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"]))
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])))
    page.goto(url, wait_until="networkidle")
    page.wait_for_timeout(500)
    return [(urls.get(rid, rid), size) for rid, size in sizes.items()]


def main() -> None:
    from edge_agent.demo.run import prepare_demo
    from edge_agent.demo.sample_roster import load_sample_roster

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="school-edge-bench-pages-") as tmp:
        data_dir = Path(tmp) / "data"
        appliance = prepare_demo(data_dir, "127.0.0.1", port)
        creds = load_sample_roster(appliance)
        appliance.close()
        server = start_edge(data_dir, port)
        try:
            students = httpx.get(f"{base}/api/v1/login/classes/{creds['class_id']}/students").json()["students"]
            name, pin = creds["students"][0]
            person = next(s["id"] for s in students if s["name"] == name)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
                # service workers blocked: what the service worker fetched would not show in the page's log
                context = browser.new_context(viewport={"width": 800, "height": 1280}, has_touch=True, locale="zh-CN",
                                              service_workers="block")
                r = context.request.post(base + "/api/v1/login/student", headers={"X-Requested-With": "bench"},
                                         data={"class_id": creds["class_id"], "person_id": person, "pin": pin})
                assert r.ok, r.text()
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                first = measure(page, cdp, base + "/student")
                cdp.send("Network.disable")
                cdp.detach()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                repeat = measure(page, cdp, base + "/student")
                browser.close()
        finally:
            stop(server)
    for label, rows in (("first load (empty cache)", first), ("later load", repeat)):
        print(f"{label}:")
        for url, size in sorted(rows, key=lambda r: -r[1]):
            print(f"  {size:8d} B  {url.replace(base, '')}")
        print(f"  {sum(s for _, s in rows):8d} B  total")
    first_kb = sum(s for _, s in first) / 1024
    repeat_kb = sum(s for _, s in repeat) / 1024
    print(f"student_home_first_kb={first_kb:.1f} student_home_repeat_kb={repeat_kb:.1f}")


if __name__ == "__main__":
    main()
