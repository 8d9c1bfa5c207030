"""The nginx front of ``school-edge edge serve`` on loopback: nginx sends content files
itself, the app decides about the rest; request limits, slow clients, login rate, the
private run folder, nginx restarted when it dies, a clear line when nginx is missing.
(The same front across a real link: test_front_lan.py.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time

import httpx
import pytest
from click.testing import CliRunner
from fixtures.servers import ServerProcess, free_port

from edge_agent import front
from edge_agent.appliance import Appliance
from edge_agent.cli import main
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import DEMO_SCHOOL_CODE, load_sample_library
from edge_agent.library.catalogue import Resource, ResourceFile
from hub_sync.core.processes import wait_until

TIMEOUT_S = 2  # request_timeout_s of the served appliance: slow clients are cut after this
LOGIN_RATE = 6  # login POSTs per minute per address (burst: 5)
BIG_TEXT = ("<p>拼音 pīnyīn ā á ǎ à</p>\n" * 1200).encode()  # ~40 KB of HTML: gzip applies


def front_data(data) -> dict:
    """The sample library plus one big HTML file; returns the catalogue's files by kind."""
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1}))
    try:
        appliance.set_identity(school_code=DEMO_SCHOOL_CODE)
        load_sample_library(appliance)
        blob = appliance.store.put_bytes(BIG_TEXT)
        appliance.catalogue.upsert_many([Resource("big-page", "长页面", "html", stage="小学", grade="一年级", subject="语文",
                                                  files=[ResourceFile("index.html", blob.sha256, blob.size, "text/html")])])
        files = {}
        for rid in ("sample-00000", "sample-00002", "sample-00004", "big-page"):
            r = appliance.catalogue.get(rid)
            for f in r.files:
                files.setdefault(r.kind if rid != "big-page" else "big", f)
        return files
    finally:
        appliance.close()


@pytest.fixture(scope="module")
def fronted(tmp_path_factory):
    data = tmp_path_factory.mktemp("front") / "data"
    files = front_data(data)
    (data / "settings.json").write_text(json.dumps({"request_timeout_s": TIMEOUT_S, "login_rate_per_min": LOGIN_RATE,
                                                    "json_body_kb": 64, "max_upload_mb": 5}))
    port = free_port()
    server = ServerProcess(["edge", "serve", "--data", str(data), "--port", str(port), "--no-announce"], port)
    try:
        server.wait()
        with httpx.Client(base_url=server.base, timeout=10) as http:
            server.http, server.data, server.files = http, data, files
            yield server
    finally:
        code = server.stop()
    assert code == 0, server.output()


def url(f) -> str:
    return f"/content/{f.sha256}/{f.path.rsplit('/', 1)[-1]}"


def test_nginx_sends_content_files_with_type_caching_range_etag_and_gzip(fronted):
    html = fronted.files["html"]
    r = fronted.http.get(url(html))
    assert r.status_code == 200 and r.headers["server"] == "nginx"
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox allow-scripts allow-forms"  # lessons never get our origin
    assert fronted.http.get(url(html), headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    audio = fronted.files["audio"]
    part = fronted.http.get(url(audio), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and len(part.content) == 10 and part.headers["content-type"] == "audio/wav"
    assert part.headers["content-range"].endswith(f"/{audio.size}")
    assert "content-security-policy" not in part.headers
    big = fronted.http.get(url(fronted.files["big"]), headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip" and big.content == BIG_TEXT  # httpx decodes it
    assert int(big.headers.get("content-length", len(BIG_TEXT))) < len(BIG_TEXT) // 4 or "content-length" not in big.headers


def test_the_apps_file_routes_send_through_nginx_too(fronted):
    """/r/<resource>/<path> and /content/<sha> are the app's (catalogue lookup, access), the bytes nginx's."""
    r = fronted.http.get("/r/sample-00000/index.html", headers={"Range": "bytes=0-4"})
    assert r.status_code == 206 and r.content == fronted.http.get(url(fronted.files["html"])).content[:5]
    assert "no-cache" in r.headers["cache-control"] and r.headers["content-security-policy"].startswith("sandbox")
    assert "x-accel-redirect" not in r.headers
    plain = fronted.http.get(f"/content/{fronted.files['audio'].sha256}")
    assert plain.status_code == 200 and plain.headers["content-type"] == "audio/wav"
    assert len(plain.content) == fronted.files["audio"].size


def test_answer_keys_and_missing_blobs_are_decided_by_the_app(fronted):
    exercise = fronted.files["exercise"]
    r = fronted.http.get(url(exercise))
    assert r.status_code == 403 and r.json()["error"]["code"] == "teachers_only"
    assert not (fronted.data / "run" / "public" / exercise.sha256[:2] / exercise.sha256[2:]).exists()
    missing = fronted.http.get(f"/content/{'ab' * 32}/x.png")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_the_run_folder_is_private_and_holds_everything_nginx_writes(fronted):
    run = fronted.data / "run"
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    sock = run / "app.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    conf = (run / "nginx.conf").read_text()
    assert f"listen 127.0.0.1:{fronted.port}" in conf and str(sock) in conf
    assert (run / "nginx.pid").read_text().strip().isdigit()
    # the app is reached only through the socket: nothing else of ours listens on TCP
    assert f"client_body_temp_path \"{run}/nginx-tmp/body\"" in conf


def test_a_30_mib_body_to_a_login_is_refused_by_nginx_and_the_app_keeps_serving(fronted):
    body = b'{"staff_number": "' + b"9" * (30 * 1024 * 1024) + b'"}'
    r = fronted.http.post("/api/v1/login/staff", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "too_large" and error["message"] and error["message_en"]
    assert fronted.http.get("/api/v1/status").status_code == 200


def test_upload_routes_take_bodies_up_to_max_upload_mb(fronted):
    two_mib = os.urandom(2 * 1024 * 1024)
    for _ in range(10):  # the app refuses before reading the body: its answer arrives, never a 502
        r = fronted.http.post("/api/v1/uploads", files={"file": ("a.bin", two_mib)})
        assert r.status_code in (401, 403) and r.json()["error"]["message_en"]  # past nginx (5 MB here)
    six_mib = fronted.http.post("/api/v1/uploads", files={"file": ("a.bin", os.urandom(6 * 1024 * 1024))})
    assert six_mib.status_code == 413


def test_login_posts_are_rate_limited_per_address_with_a_json_429(fronted):
    codes = [fronted.http.post("/api/v1/login/staff", json={"staff_number": "nobody", "password": "x"}).status_code
             for _ in range(12)]
    assert 429 in codes and codes.count(429) >= 12 - 6, codes
    r = fronted.http.post("/api/v1/login/staff", json={"staff_number": "nobody", "password": "x"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    error = r.json()["error"]
    assert error["code"] == "too_many_logins" and "登录" in error["message"] and "login" in error["message_en"]
    assert fronted.http.get("/login").status_code == 200  # pages (GET) are not counted
    assert fronted.http.get("/api/v1/status").status_code == 200


def _slow_client(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and never the end of the header
    return s


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(TIMEOUT_S + 5)
    try:
        data = s.recv(1024)
    except ConnectionResetError:  # reset_timedout_connection
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_slow_clients_cost_the_app_nothing_and_are_cut_off(fronted):
    slow = [_slow_client(fronted.port) for _ in range(300)]
    try:
        started = time.monotonic()
        for _ in range(20):
            assert fronted.http.get("/api/v1/status").status_code == 200
        assert time.monotonic() - started < 5
        for s in slow:  # nginx's client_header_timeout closes every held connection
            assert _closed_by_server(s)
    finally:
        for s in slow:
            s.close()


def test_nginx_is_started_again_when_it_dies(tmp_path, serve_edge):
    server = serve_edge(tmp_path / "data")
    pid_file = tmp_path / "data" / "run" / "nginx.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)

    def answering_again() -> bool:
        try:
            new = int(pid_file.read_text())
            return new != pid and httpx.get(server.base + "/api/v1/status", timeout=5).status_code == 200
        except (httpx.TransportError, ValueError, FileNotFoundError):
            return False

    wait_until(answering_again, 15, "nginx to be started again by the master")
    assert server.stop() == 0


def test_without_nginx_serve_says_what_to_install_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(front, "NGINX_PATHS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["edge", "serve", "--data", str(tmp_path / "data"), "--port", str(free_port()),
                                       "--no-announce"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "apt-get install nginx" in lines[0] and "Traceback" not in result.output


def test_the_generated_configuration_follows_the_settings(tmp_path):
    cfg = EdgeConfig.load(tmp_path, {"host": "0.0.0.0", "port": 8123, "request_timeout_s": 9, "json_body_kb": 32,
                                     "max_upload_mb": 50, "login_rate_per_min": 12})
    paths = front.prepare(cfg, tmp_path / "content")  # nginx -t accepts it
    conf = paths.conf.read_text()
    for line in ("listen 0.0.0.0:8123 default_server;", "client_header_timeout 9s;", "client_body_timeout 9s;",
                 "send_timeout 9s;", "client_max_body_size 32k;", "client_max_body_size 50m;", "rate=12r/m;",
                 "proxy_request_buffering on;", "sendfile on;"):
        assert line in conf, line


def test_a_file_catalogued_while_serving_is_sent_by_nginx_within_seconds(fronted):
    appliance = Appliance.open(EdgeConfig.load(fronted.data))
    try:
        blob = appliance.store.put_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
        appliance.catalogue.upsert_many([Resource("new-picture", "新插图", "image", stage="小学", grade="一年级",
                                                  subject="科学", files=[ResourceFile("new.png", blob.sha256, blob.size,
                                                                                      "image/png")])])
    finally:
        appliance.close()
    link = fronted.data / "run" / "public" / blob.sha256[:2] / blob.sha256[2:]
    wait_until(link.exists, 10, "the public links to follow the catalogue")
    r = fronted.http.get(f"/content/{blob.sha256}/new.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_without_nginx_the_demo_says_so_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(front, "NGINX_PATHS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    data = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--data", str(data), "--port", str(free_port())])
    assert result.exit_code == 1 and "apt-get install nginx" in result.output and "Traceback" not in result.output
    assert not (data / "county-hub").exists()  # no hub was started
