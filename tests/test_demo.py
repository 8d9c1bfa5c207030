"""``school-edge demo`` as a user runs it: a real process with a sample library."""

import os
import signal

import httpx
import pytest
from fixtures.servers import ServerProcess, free_port

pytestmark = pytest.mark.slow  # the demo makes its library, a video and a county hub: 25-30 s per test

# the demo makes its sample library (and, with ffmpeg, a video) before it serves
DEMO_START_S = 90


def start_demo(args, port, env=None) -> ServerProcess:
    return ServerProcess(args, port, env=env).wait(timeout_s=DEMO_START_S)


def test_demo_serves_the_sample_library_and_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    demo = start_demo(["demo", "--data", str(tmp_path / "demo"), "--port", str(port)], port)
    try:
        found = httpx.get(demo.base + "/api/v1/resources", params={"q": "拼音"}, timeout=10).json()
        lesson = next(r for r in found["resources"] if r["title"] == "汉语拼音 第一课 a o e")
        page = httpx.get(demo.base + lesson["url"], timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "汉语拼音 第一课" in page.text and 'src="picture.svg"' in page.text
        picture = httpx.get(demo.base + f"/r/{lesson['id']}/picture.svg", timeout=10)  # the lesson's relative link
        assert picture.status_code == 200 and picture.text.startswith("<svg")
        status = httpx.get(demo.base + "/api/v1/status", timeout=10).json()
        assert status["resources"] >= 25 and status["school_code"]
    finally:
        code = demo.stop(signal.SIGTERM)
    out = demo.output()
    assert code == 0, out
    assert f"http://127.0.0.1:{port}/" in out and "/api/v1/resources?q=拼音" in out
    assert "已停止" in out and "Traceback" not in out
    assert (tmp_path / "demo" / "edge.db").is_file()


def test_demo_without_data_uses_a_fresh_temporary_folder_and_ctrl_c_stops_it(tmp_path_factory):
    # a short TMPDIR: the demo's nginx socket, <TMPDIR>/school-edge-demo-XXXXXXXX/run/app.sock, must stay
    # under the 107 bytes of a unix socket path (a test's own tmp_path under pytest-xdist is longer)
    tmp_path = tmp_path_factory.mktemp("demo")
    port = free_port()
    demo = start_demo(["demo", "--port", str(port)], port, env={"TMPDIR": str(tmp_path)})
    try:
        assert httpx.get(demo.base + "/api/v1/status", timeout=10).json()["resources"] >= 25
    finally:
        code = demo.stop(signal.SIGINT)
    assert code == 0 and "已停止" in demo.output()
    [folder] = [p for p in tmp_path.iterdir() if p.name.startswith("school-edge-demo-")]
    assert str(folder) in demo.output() and (folder / "edge.db").is_file()
    assert os.listdir(folder / "content" / ".incoming") == []
