"""LAN serving on the real server (gunicorn on loopback, front=none: the app's own
file serving) over real HTTP: the JSON API, Range and caching of files, MIME types,
traversal attempts; corrupt blobs (behind the nginx front, found by the scrub)."""

import json
import socket
import subprocess
import sys

import httpx
import pytest
from fixtures.common import REPO
from fixtures.servers import ServerProcess, free_port

from hub_sync.core.processes import wait_until

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import DEMO_SCHOOL_CODE, load_sample_library


def sample_data(data) -> Appliance:
    """A data folder holding exactly the 25 resources of the sample library."""
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1}))
    appliance.set_identity(school_code=DEMO_SCHOOL_CODE)
    load_sample_library(appliance)
    return appliance


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """One appliance with the sample library, served for the whole module (read-only tests)."""
    data = tmp_path_factory.mktemp("library") / "data"
    sample_data(data).close()
    # the app's own file serving (Range, ETag, types, traversals); nginx's is tested in test_front.py
    (data / "settings.json").write_text(json.dumps({"front": "none"}))
    port = free_port()
    server = ServerProcess(["edge", "serve", "--data", str(data), "--port", str(port), "--no-announce"], port)
    try:
        server.wait()
        with httpx.Client(base_url=server.base, timeout=10) as http:
            server.http = http
            yield server
    finally:
        code = server.stop()
    assert code == 0, server.output()


def first_file(library, query: str, **filters) -> dict:
    found = library.http.get("/api/v1/resources", params={"q": query, **filters}).json()["resources"]
    assert found, f"nothing found for {query}"
    return found[0]["files"][0]


def raw_get(port: int, target: str, headers: str = "") -> tuple[int, dict, bytes]:
    """Send the request line exactly as given (httpx would normalise '..' away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"] and error["message_en"]
    if code:
        assert error["code"] == code
    return error


# -- the JSON API ------------------------------------------------------------------

def test_status_reports_identity_version_resources_and_disk(library):
    status = library.http.get("/api/v1/status").json()
    assert status["school_code"] == DEMO_SCHOOL_CODE
    assert status["device_id"].startswith("edge-")
    assert status["version"] == "0.1.0"
    assert status["resources"] == 25
    assert status["disk_free_bytes"] > 0 and status["corrupt_files"] == 0


def test_search_finds_pinyin_lesson_with_its_files(library):
    body = library.http.get("/api/v1/resources", params={"q": "拼音"}).json()
    lesson = next(r for r in body["resources"] if r["title"] == "汉语拼音 第一课 a o e")
    assert body["total"] == 3
    assert lesson["subject"] == "语文" and lesson["grade"] == "一年级" and lesson["kind"] == "html"
    assert lesson["url"] == f"/r/{lesson['id']}/index.html"
    for f in lesson["files"]:
        assert f["url"] == f"/content/{f['sha256']}/{f['path']}"
        assert set(f) >= {"url", "sha256", "size", "mime"}
        got = library.http.get(f["url"])
        assert got.status_code == 200 and len(got.content) == f["size"]


def test_search_filters_combine_over_http(library):
    body = library.http.get("/api/v1/resources", params={"q": "拼音", "kind": "audio", "grade": "一年级"}).json()
    assert [r["title"] for r in body["resources"]] == ["拼音儿歌 跟读音频"]
    body = library.http.get("/api/v1/resources", params={"subject": "数学", "edition": "人教版", "limit": 2}).json()
    assert body["total"] == 6 and len(body["resources"]) == 2


def test_one_resource_and_facets(library):
    r = library.http.get("/api/v1/resources/sample-00000").json()
    assert r["title"] == "汉语拼音 第一课 a o e" and len(r["files"]) == 2
    facets = library.http.get("/api/v1/facets").json()
    assert {"value": "语文", "count": 9} in facets["subject"]


def test_unknown_resource_id_is_404_json(library):
    error = assert_json_error(library.http.get("/api/v1/resources/no-such-id"), 404, "not_found")
    assert "no-such-id" in error["message"]


@pytest.mark.parametrize("params, words", [
    ({"colour": "red"}, "unknown parameter"),
    ({"limit": "many"}, "whole numbers"),
    ({"limit": "0"}, "limit must be between"),
])
def test_bad_query_parameters_are_400_json(library, params, words):
    error = assert_json_error(library.http.get("/api/v1/resources", params=params), 400, "bad_request")
    assert words in error["message_en"]


def test_unknown_page_and_wrong_method_are_json_errors(library):
    assert_json_error(library.http.get("/api/v2/nothing"), 404)
    assert_json_error(library.http.post("/api/v1/status"), 405)


# -- files: Range, caching, MIME -------------------------------------------------------

def test_range_requests_answer_206_with_content_range(library):
    f = first_file(library, "拼音", kind="audio")
    whole = library.http.get(f["url"]).content
    size = f["size"]
    for header, start, end in [("bytes=0-9", 0, 9), ("bytes=-5", size - 5, size - 1), ("bytes=100-", 100, size - 1),
                               ("bytes=1000-1999", 1000, 1999), ("bytes=0-999999999", 0, size - 1)]:
        part = library.http.get(f["url"], headers={"Range": header})
        assert part.status_code == 206, header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
        assert part.content == whole[start:end + 1]
        assert int(part.headers["content-length"]) == end - start + 1


def test_several_ranges_or_another_unit_get_the_whole_file(library):
    f = first_file(library, "拼音", kind="audio")
    for header in ("bytes=0-1,5-6", "items=0-5"):
        r = library.http.get(f["url"], headers={"Range": header})
        assert r.status_code == 200 and len(r.content) == f["size"], header


def test_unsatisfiable_range_is_416_with_the_length(library):
    f = first_file(library, "拼音", kind="audio")
    r = library.http.get(f["url"], headers={"Range": f"bytes={f['size']}-"})
    assert_json_error(r, 416)
    assert r.headers["content-range"] == f"bytes */{f['size']}"


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "bytes=", "bytes=-0", "bytes=1-2-3"])
def test_malformed_range_is_416_json_saying_so(library, header):
    f = first_file(library, "拼音", kind="audio")
    r = library.http.get(f["url"], headers={"Range": header})
    error = assert_json_error(r, 416, "bad_range")
    assert "malformed Range" in error["message_en"]
    assert r.headers["content-range"] == f"bytes */{f['size']}"


def test_etag_is_the_hash_and_if_none_match_gives_304(library):
    f = first_file(library, "拼音", kind="audio")
    r = library.http.get(f["url"])
    assert r.headers["etag"] == f'"{f["sha256"]}"'
    again = library.http.get(f["url"], headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    other = library.http.get(f["url"], headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_if_range_resumes_only_the_same_file(library):
    f = first_file(library, "拼音", kind="audio")
    same = library.http.get(f["url"], headers={"Range": "bytes=10-19", "If-Range": f'"{f["sha256"]}"'})
    assert same.status_code == 206 and len(same.content) == 10
    changed = library.http.get(f["url"], headers={"Range": "bytes=10-19", "If-Range": '"an-older-version"'})
    assert changed.status_code == 200 and len(changed.content) == f["size"]


def test_content_urls_are_cached_for_a_year_and_resource_urls_revalidate(library):
    lesson = library.http.get("/api/v1/resources/sample-00000").json()
    by_hash = library.http.get(lesson["files"][0]["url"])
    assert by_hash.headers["cache-control"] == "public, max-age=31536000, immutable"
    by_place = library.http.get(lesson["url"])
    assert "no-cache" in by_place.headers["cache-control"]
    assert by_place.headers["etag"] == by_hash.headers["etag"]


@pytest.mark.parametrize("query, kind, mime", [
    ("汉语拼音 第一课", "html", "text/html; charset=utf-8"),
    ("识字卡片", "image", "image/svg+xml; charset=utf-8"),
    ("拼音儿歌", "audio", "audio/wav"),
    ("教学设计", "document", "application/pdf"),
])  # exercise files are teachers-only: their type is checked in test_answers_private
def test_files_carry_the_mime_type_a_browser_needs(library, query, kind, mime):
    f = first_file(library, query, kind=kind)
    r = library.http.get(f["url"])
    assert r.headers["content-type"] == mime
    assert r.headers["x-content-type-options"] == "nosniff"


def test_head_answers_length_without_a_body(library):
    f = first_file(library, "拼音", kind="audio")
    r = library.http.head(f["url"])
    assert r.status_code == 200 and int(r.headers["content-length"]) == f["size"] and r.content == b""


# -- paths that try to leave the store ----------------------------------------------

TRAVERSALS = [
    "/r/sample-00000/../../../etc/passwd",
    "/r/sample-00000/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/r/sample-00000/..%2F..%2Fedge.db",
    "/r/sample-00000/%2e%2e%2f%2e%2e%2fedge.db",
    "/r/sample-00000/..%5c..%5cedge.db",
    "/r/%2E%2E/%2E%2E/settings.json",
    "/r/sample-00000//etc/passwd",
    "/r/sample-00000/%2Fetc%2Fpasswd",
    "/content/..%2Fedge.db",
    "/content/../edge.db",
    "/content/%2Fetc%2Fpasswd",
    "/content/.incoming",
    "//etc/passwd",
    "/etc/passwd",
    "/edge.db",
    "/../../etc/passwd",
    "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("target", TRAVERSALS)
def test_paths_that_try_to_leave_the_store_get_404_json_and_nothing_else(library, target):
    status, headers, body = raw_get(library.port, target)
    assert status == 404, target
    assert headers["content-type"].startswith("application/json") and "location" not in headers
    assert json.loads(body)["error"]["code"] == "not_found"
    assert b"root:" not in body and b"SQLite" not in body


def test_absolute_form_request_target_cannot_leave_the_store(library):
    status, headers, body = raw_get(library.port, f"http://127.0.0.1:{library.port}/../../etc/passwd")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"


# -- a corrupted blob on disk --------------------------------------------------------

def _damage(path) -> bytes:
    """Flip one byte of a stored blob, keeping its size (bit rot on an SD card)."""
    damaged = bytearray(path.read_bytes())
    damaged[20] ^= 0xFF
    path.write_bytes(bytes(damaged))
    return bytes(damaged)


@pytest.mark.slow  # waits for the scrub: ~8 s
def test_a_damaged_blob_is_quarantined_by_the_background_scrub_and_then_404(tmp_path, serve_edge):
    data = tmp_path / "data"
    appliance = sample_data(data)
    html, svg = appliance.catalogue.get("sample-00000").files
    path = appliance.store.path_for(html.sha256)
    appliance.close()
    damaged = _damage(path)
    (data / "settings.json").write_text(json.dumps({"scrub_every_h": 0}))  # hash everything again at once
    server = serve_edge(data)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        wait_until(lambda: not path.exists(), 30, "the background scrub to quarantine the damaged blob")
        for url in (f"/content/{html.sha256}/index.html", "/r/sample-00000/index.html", f"/content/{html.sha256}"):
            r = http.get(url)
            assert_json_error(r, 404, "not_found")
            assert b"<html" not in r.content
        assert http.get(f"/content/{svg.sha256}/picture.svg").status_code == 200  # the rest is still served
        assert http.get("/api/v1/status").json()["corrupt_files"] == 1
    # moved aside, evidence kept: the store no longer has it, so the next sync fetches it again
    assert (data / "content" / ".corrupt" / html.sha256).read_bytes() == damaged
    server.stop()
    assert _verify(data).returncode == 0  # nothing damaged is left in the store


def test_verify_finds_a_damaged_blob_at_once_and_quarantines_it(tmp_path):
    data = tmp_path / "data"
    appliance = sample_data(data)
    html, svg = appliance.catalogue.get("sample-00000").files
    path = appliance.store.path_for(html.sha256)
    appliance.close()
    assert _verify(data).returncode == 0
    damaged = _damage(path)
    result = _verify(data)
    assert result.returncode == 1
    assert f"corrupt: {html.sha256}" in result.stdout and svg.sha256 not in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not path.exists()
    assert (data / "content" / ".corrupt" / html.sha256).read_bytes() == damaged
    again = Appliance.open(EdgeConfig.load(data))
    try:
        assert not again.store.has(html.sha256) and again.store.has(svg.sha256)
        assert again.status()["corrupt_files"] == 1  # until the good bytes are back
    finally:
        again.close()
    assert _verify(data).returncode == 0  # nothing damaged is left in the store


@pytest.mark.slow  # a real server started and stopped: ~7 s
def test_missing_blob_is_404_json(tmp_path, serve_edge):
    data = tmp_path / "data"
    appliance = sample_data(data)
    f = appliance.catalogue.get("sample-00002").files[0]
    appliance.store.remove(f.sha256)
    appliance.close()
    server = serve_edge(data)
    error = assert_json_error(httpx.get(f"{server.base}/content/{f.sha256}", timeout=10), 404)
    assert "not on this device" in error["message_en"]


def _verify(data) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_agent.cli", "edge", "verify", "--data", str(data)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)



def test_gunicorn_is_configured_to_send_file_bodies_with_sendfile(monkeypatch):
    from flask import Flask

    from hub_sync.core.wsgi_server import _Gunicorn, gunicorn_options

    monkeypatch.delenv("SENDFILE", raising=False)
    cfg = _Gunicorn(Flask("t"), gunicorn_options("127.0.0.1", 8080)).cfg
    assert cfg.sendfile is True and cfg.worker_class_str == "gthread" and cfg.threads == 64


def test_background_jobs_run_in_one_worker_and_move_to_its_replacement(appliance):
    from edge_agent import runner

    started, stopped = [], []

    def hook(app):
        started.append(app)
        return lambda: stopped.append(app)

    first, second = runner.BackgroundJobs(appliance, [hook]), runner.BackgroundJobs(appliance, [hook])
    first.start()
    second.start()                       # another worker of the same appliance: the lock is taken
    assert (len(started), stopped) == (1, [])
    first.stop()                         # the worker exits: its jobs stop, the lock is free
    assert len(stopped) == 1
    replacement = runner.BackgroundJobs(appliance, [hook])
    replacement.start()
    assert len(started) == 2
    replacement.stop()
    second.stop()                        # held nothing: nothing to stop
    assert len(stopped) == 2
