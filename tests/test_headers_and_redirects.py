"""Headers and redirects of the real served appliance: every type a lesson may contain
that a browser runs scripts in (HTML, XHTML, SVG, XML) comes with a CSP sandbox, by
hash and by its place in the lesson; pages and API answers may be framed only by the
appliance itself; ``next=`` never leads off the appliance, however it is written."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.library.file_response import is_active_type

SVG = b"<svg xmlns='http://www.w3.org/2000/svg'><script>parent.alert(1)</script><circle r='5'/></svg>"
LESSON_FILES = {  # path -> (mime as the catalogue has it, bytes)
    "index.html": ("text/html; charset=utf-8", b"<!doctype html><script>document.cookie</script><a href='page.xhtml'>next</a>"),
    "page.xhtml": ("application/xhtml+xml", b"<html xmlns='http://www.w3.org/1999/xhtml'><script>1</script></html>"),
    "figure.svg": ("image/svg+xml", SVG),
    "data.xml": ("text/xml", b"<?xml version='1.0'?><x:script xmlns:x='http://www.w3.org/1999/xhtml'>1</x:script>"),
    "also.xml": ("application/xml", b"<?xml version='1.0'?><root/>"),
    "feed.atom": ("application/atom+xml", b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'/>"),
}
PASSIVE_FILES = {"photo.png": ("image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "notes.txt": ("text/plain", b"hello")}
OFF_SITE = ["/\\evil.example", "//evil.example", "https://evil.example", "http:/evil.example", "/%5Cevil.example",
            "/%5cevil.example", "/%2F%2Fevil.example", "/%2f/evil.example", "/%252F%252Fevil.example", "/%255Cevil.example",
            "/\t/evil.example", "/%09/evil.example", "/%0d%0a/evil.example", "\\\\evil.example", "javascript:alert(1)",
            "evil.example", "/.\\evil.example", " //evil.example"]
SAME_SITE = ["/library", "/student", "/teacher/classes/3", "/library?q=%E6%95%B0%E5%AD%A6&offset=24"]
PAGES = ["/", "/library", "/login", "/student/login", "/library/lesson-1", "/no-such-page"]
APIS = ["/api/v1/status", "/api/v1/resources", "/api/v1/session", "/api/v1/no-such-thing"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A served appliance (``school-edge edge serve``) with one lesson holding every active type."""
    from fixtures.servers import ServerProcess, free_port

    data_dir = tmp_path_factory.mktemp("headers") / "data"
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    files = []
    for path, (mime, data) in {**LESSON_FILES, **PASSIVE_FILES}.items():
        files.append(ResourceFile(path, appliance.store.put_bytes(data).sha256, len(data), mime))
    appliance.catalogue.upsert(Resource(id="lesson-1", title="认识图形 互动课件", kind="html", files=files))
    appliance.close()
    port = free_port()
    server = ServerProcess(["edge", "serve", "--data", str(data_dir), "--port", str(port), "--no-announce"], port).wait()
    client = httpx.Client(base_url=server.base, timeout=10.0, follow_redirects=False)
    yield client, files
    client.close()
    server.stop()


def urls_of(f: ResourceFile) -> list[str]:
    return [f"/content/{f.sha256}/{f.path}", f"/content/{f.sha256}", f"/r/lesson-1/{f.path}"]


def test_every_active_type_of_a_lesson_is_sandboxed_by_every_url(served):
    client, files = served
    for f in files:
        if f.path not in LESSON_FILES:
            continue
        for url in urls_of(f):
            for method in ("GET", "HEAD"):
                r = client.request(method, url)
                assert r.status_code == 200, (url, r.status_code)
                policy = r.headers.get("Content-Security-Policy", "")
                assert re.search(r"(^|;)\s*sandbox\b", policy), (f.path, url, method, r.headers.get("Content-Type"), policy)
                assert "allow-same-origin" not in policy  # scripts run, never as the appliance
                assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_passive_files_are_served_plainly(served):
    client, files = served
    for f in files:
        if f.path in PASSIVE_FILES:
            r = client.get(urls_of(f)[0])
            assert r.status_code == 200 and r.content == PASSIVE_FILES[f.path][1]
            assert "sandbox" not in r.headers.get("Content-Security-Policy", "")


def test_active_types_include_every_xml_flavour():
    for mime in ("text/html", "TEXT/HTML; charset=UTF-8", "application/xhtml+xml", "image/svg+xml", "text/xml",
                 "application/xml", "application/rss+xml", "text/xsl"):
        assert is_active_type(mime), mime
    for mime in ("image/png", "text/plain", "application/pdf", "video/mp4", "application/json", ""):
        assert not is_active_type(mime), mime


@pytest.mark.parametrize("path", PAGES + APIS)
def test_pages_and_api_answers_may_be_framed_only_by_the_appliance(served, path):
    client, _ = served
    r = client.get(path)
    assert r.headers.get("X-Frame-Options") == "SAMEORIGIN", (path, r.status_code)
    assert "frame-ancestors 'self'" in r.headers.get("Content-Security-Policy", ""), path


@pytest.mark.parametrize("target", OFF_SITE)
def test_next_never_leads_off_the_appliance(served, target):
    client, _ = served
    r = client.get("/lang/en", params={"next": target})
    assert r.status_code == 302 and r.headers["Location"] == "/", (target, r.headers.get("Location"))
    # the staff login page hands next to its script: the same rule, so the script goes home too
    html = client.get("/login", params={"next": target}).text
    assert unescape(re.search(r'data-next="([^"]*)"', html).group(1)) == "/", target


@pytest.mark.parametrize("target", SAME_SITE)
def test_next_keeps_a_path_on_the_appliance(served, target):
    client, _ = served
    r = client.get("/lang/zh_CN?next=" + quote(target, safe=""))
    assert r.status_code == 302 and r.headers["Location"] == target
    html = client.get("/login", params={"next": target}).text
    assert unescape(re.search(r'data-next="([^"]*)"', html).group(1)) == target
