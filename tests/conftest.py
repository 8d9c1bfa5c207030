"""Fixtures: fast in-process ones (temporary data folder, test client) and ones
that boot the real thing (``school-edge edge serve`` on loopback) and poll until
it answers. A leak check fails any test that leaves threads behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.wiring import create_served_app

REPO = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """Mount a real, small tmpfs at ``path`` (needs root): full disks and read-only disks for real."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout_s: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any status), or fail with the server's output."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout_s}s")


class ServerProcess:
    """A ``school-edge`` command running as a real process on loopback.

    Its output goes to a temporary file, not a pipe: a pipe nobody reads fills up
    (64 KiB) and then blocks the server in the middle of a test."""

    def __init__(self, args: list[str], port: int, env: dict | None = None) -> None:
        import tempfile

        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", *args], cwd=REPO, env={**os.environ, **(env or {})},
            stdout=self._log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )

    def wait(self, path: str = "/api/v1/status") -> "ServerProcess":
        try:
            wait_http(self.base + path, proc=self.proc)
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}; the server printed:\n{self.output()}") from None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited early with {self.proc.returncode}:\n{self.output()}")
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if not self._log.closed:
            self._output = self.output()
            self._log.close()
        return self.proc.returncode

    _output = ""

    def output(self) -> str:
        """Everything the server has printed so far (all of it after ``stop()``)."""
        if self._log.closed:
            return self._output
        self._log.flush()
        self._log.seek(0)
        return self._log.read()


@pytest.fixture
def config(tmp_path: Path) -> EdgeConfig:
    return EdgeConfig.load(tmp_path / "data", {"free_space_reserve_mb": 1, "advertise": False})


@pytest.fixture
def appliance(config: EdgeConfig):
    app = Appliance.open(config)
    yield app
    app.close()


@pytest.fixture
def client(appliance: Appliance):
    return create_served_app(appliance.config, appliance=appliance).test_client()


@pytest.fixture
def serve_edge(tmp_path: Path):
    """Start ``school-edge edge serve`` on a data folder; stop it afterwards."""
    started: list[ServerProcess] = []

    def start(data_dir: Path, *extra: str, announce: bool = False, wait: bool = True) -> ServerProcess:
        port = free_port()
        args = ["edge", "serve", "--data", str(data_dir), "--port", str(port), *extra]
        if not announce:
            args.append("--no-announce")
        server = ServerProcess(args, port)
        started.append(server)
        return server.wait() if wait else server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a thread running (zeroconf, schedulers, servers)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
        if not leaked:
            return
        time.sleep(0.05)
    pytest.fail(f"test leaked threads: {leaked}")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module (see tests/browser_fixtures.py).

    Not per session: Playwright's sync API keeps an asyncio loop marked running on the main
    thread, and in-process zeroconf (tests/test_zeroconf.py) would schedule onto that idle loop.
    """
    from browser_fixtures import launch_browser

    yield from launch_browser()
