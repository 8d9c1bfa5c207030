"""Starting and stopping the real thing for a benchmark or a script: a free
loopback port, ``school-edge edge serve`` as its own process group, polling until
it answers, and a clean stop. (The tests have their own, in ``tests/conftest.py``;
scripts never import ``tests``.)"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 30) -> None:
    """Poll ``url`` until it answers (any status); exit with a clear line if ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[0]} exited early ({proc.returncode})")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout_s}s")


def start_edge(data_dir: Path, port: int, timeout_s: float = 30) -> subprocess.Popen:
    """``school-edge edge serve`` on ``data_dir`` and ``port`` (no LAN announcement), answering."""
    proc = subprocess.Popen([sys.executable, "-m", "edge_agent.cli", "edge", "serve", "--data", str(data_dir),
                             "--port", str(port), "--no-announce"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_http(f"http://127.0.0.1:{port}/api/v1/status", proc, timeout_s)
    return proc


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it does not go within 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
