"""``hub serve`` behind Debian's nginx (``hub_sync.hub.hub_front``): published files sent by
nginx, body limits and the console's login rate answered in JSON (Chinese and English),
nginx supervised, and nothing left running after SIGTERM."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from fixtures.servers import ServerProcess, free_port
from hub_sync.core import nginx_front
from hub_sync.core.processes import wait_until
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import publish

STOP_WITHIN_S = 10.0


def _published_hub(data: Path, db_url: str | None = None) -> tuple[bytes, str, str]:
    """A hub with one published file and one stored but unpublished; (bytes, its sha, the other's sha)."""
    hub = Hub.init(data, reserve_mb=1, db_url=db_url)
    try:
        chans = Channels(hub.db)
        chans.put_channel("yuwen-1", "一年级语文 统编版", mandatory=True)
        body = os.urandom(300_000)
        blob = hub.store.put_bytes(body)
        chans.put_resource("kewen-1", "yuwen-1", {"title": "课文", "kind": "document"},
                           [{"path": "lesson.pdf", "sha256": blob.sha256, "size": len(body), "mime": "application/pdf"}])
        publish(hub)
        waiting = hub.store.put_bytes(b"an upload waiting for review")
        return body, blob.sha256, waiting.sha256
    finally:
        hub.close()


@pytest.fixture(scope="module")
def fronted_hub(tmp_path_factory, hub_db):
    data = tmp_path_factory.mktemp("hub-front") / "hub"
    body, sha, waiting = _published_hub(data, hub_db())
    port = free_port()
    server = ServerProcess(["hub", "serve", "--data", str(data), "--port", str(port), "--rsync-port", "0"], port)
    try:
        server.wait("/api/v1/hub/status")
        with httpx.Client(base_url=server.base, timeout=10) as http:
            server.http, server.data, server.body, server.sha, server.waiting = http, data, body, sha, waiting
            yield server
    finally:
        code = server.stop()
    assert code == 0, server.output()


def test_published_files_are_sent_by_nginx_with_range_and_caching(fronted_hub):
    h = fronted_hub
    r = h.http.get(f"/content/{h.sha}")
    assert r.status_code == 200 and r.content == h.body
    assert r.headers["server"] == "nginx" and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["cache-control"] == "public, max-age=31536000"
    assert r.headers["etag"] != f'"{h.sha}"' and "last-modified" in r.headers  # nginx's ETag, not the app's
    part = h.http.get(f"/content/{h.sha}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == h.body[100:200]
    target = h.http.get(f"/tuf/targets/yuwen-1/{h.sha}.lesson.pdf")  # ngclient's target path
    assert target.status_code == 200 and target.content == h.body
    assert target.headers["content-type"] == "application/octet-stream"


def test_files_not_published_are_still_refused_by_the_app(fronted_hub):
    h = fronted_hub
    for path in (f"/content/{h.waiting}", f"/tuf/targets/x/{h.waiting}.a.pdf", "/content/" + "0" * 64):
        r = h.http.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "http_404", path


def test_bodies_over_the_limits_get_a_json_413_in_chinese_and_english(fronted_hub):
    h = fronted_hub
    r = h.http.post("/api/v1/hub/enroll", content=b"x" * (2 * 1024 * 1024))
    assert r.status_code == 413
    error = r.json()["error"]
    assert error["code"] == "too_large" and error["message"] == "提交的内容太大" and "too large" in error["message_en"]
    # a usage batch may be bigger: it reaches the app, which refuses the garbage itself
    usage = h.http.post("/api/v1/hub/usage", content=b"x" * (3 * 1024 * 1024))
    assert usage.status_code == 400 and usage.json()["error"]["code"] == "bad_format"
    too_big = h.http.post("/api/v1/hub/usage", content=b"x" * (65 * 1024 * 1024))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"
    assert h.http.get("/api/v1/hub/status").status_code == 200


def test_console_login_posts_are_rate_limited_per_address_with_a_json_429(fronted_hub):
    h = fronted_hub
    codes = [h.http.post("/console/login", data={"username": "nobody", "password": "x"}).status_code
             for _ in range(20)]
    assert codes.count(429) >= 20 - 7, codes  # 20 a minute, a burst of 6
    r = h.http.post("/console/login", data={"username": "nobody", "password": "x"})
    assert r.status_code == 429 and r.headers["retry-after"] == "60"
    error = r.json()["error"]
    assert error["code"] == "too_many_logins" and "登录" in error["message"] and "login" in error["message_en"]
    assert h.http.get("/api/v1/hub/status").status_code == 200  # nothing else is counted


def test_the_run_folder_is_private_and_the_app_listens_only_on_its_socket(fronted_hub):
    run = fronted_hub.data / "run"
    assert run.stat().st_mode & 0o777 == 0o700
    assert (run / "app.sock").stat().st_mode & 0o777 == 0o600
    conf = (run / "nginx.conf").read_text()
    assert "listen 127.0.0.1:%d default_server;" % fronted_hub.port in conf
    assert f'server "unix:{run}/app.sock"' in conf and "limit_req zone=login" in conf


def test_nginx_is_started_again_when_it_dies(fronted_hub):
    pid_file = fronted_hub.data / "run" / "nginx.pid"
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGKILL)

    def answering_again() -> bool:
        try:
            return int(pid_file.read_text()) != pid and \
                httpx.get(fronted_hub.base + "/api/v1/hub/status", timeout=5).status_code == 200
        except (httpx.TransportError, ValueError, FileNotFoundError):
            return False

    wait_until(answering_again, 15, "nginx to be started again by the hub's master")


@pytest.mark.slow
def test_sigterm_stops_nginx_gunicorn_and_rsync(tmp_path):
    _published_hub(tmp_path / "hub")
    port = free_port()
    server = ServerProcess(["hub", "serve", "--data", str(tmp_path / "hub"), "--port", str(port),
                            "--rsync-port", str(free_port())], port).wait("/api/v1/hub/status")
    tree = psutil.Process(server.pid).children(recursive=True)
    names = " | ".join(" ".join(p.cmdline()) for p in tree)
    for wanted in ("nginx: master", "nginx: worker", "rsync --daemon"):
        assert wanted in names, names
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    assert server.proc.wait(STOP_WITHIN_S + 5) == 0
    assert time.monotonic() - started <= STOP_WITHIN_S
    wait_until(lambda: not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], 5,
               "every process hub serve started to end")
    assert not nginx_front.accepts("127.0.0.1", port)
    output = server.output()
    assert "Traceback" not in output and "SIGKILL" not in output, output[-2000:]
    server.stop()


def test_without_nginx_hub_serve_says_what_to_install_in_one_line(tmp_path, monkeypatch):
    Hub.init(tmp_path / "hub", reserve_mb=1).close()
    monkeypatch.setattr(nginx_front, "NGINX_PATHS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["hub", "serve", "--data", str(tmp_path / "hub"), "--port", str(free_port())])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "apt-get install nginx" in lines[0] and "--no-front" in lines[0], result.output
    assert not (tmp_path / "hub" / "run" / "app.sock").exists()
