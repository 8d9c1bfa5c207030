"""``school-edge edge serve`` and ``school-edge demo`` stop within a few seconds on
SIGTERM (a service manager, ``kill``) and on Ctrl-C (SIGINT to the terminal's whole
foreground process group), and leave nothing running: not gunicorn's workers, not
nginx or its workers, not the demo's county hub or its rsync daemon.

A leftover is looked for three ways: every process that descended from the command
while it ran (nginx and the hub run in sessions of their own, so the process group
alone would miss them), the command's process group, and any process whose command
line names the data folder."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest
from fixtures.common import REPO

from hub_sync.core.processes import SupervisedProcess, free_port, wait_until

STOP_WITHIN_S = 10.0  # "a few seconds" (gunicorn's graceful timeout is 5), with room for a loaded 2-core CI box
GONE_WITHIN_S = 3.0  # after the command itself has exited


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (its children, theirs, ...)."""
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def _naming(folder: Path) -> list[str]:
    """Live processes whose command line contains ``folder``."""
    needle = str(folder).encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in cmdline and _alive(int(entry.name)):
                found.append(entry.name + ": " + _text(cmdline)[:160])
    return found


def _text(cmdline: bytes) -> str:
    return cmdline.replace(b"\0", b" ").decode(errors="replace")


def _group(pgid: int) -> list[int]:
    members = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _alive(int(entry.name)):
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    members.append(int(entry.name))
            except ProcessLookupError:
                pass
    return members


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start(command: str, data: Path) -> tuple[SupervisedProcess, int, list[str]]:
    port = free_port()
    if command == "demo":
        # the hub takes port+1, rsync port+2: all three free now (another worker's server may hold a neighbour)
        port = next(p for p in iter(free_port, None) if p < 65000 and _free(p + 1) and _free(p + 2))
        argv = ["demo", "--data", str(data), "--port", str(port)]
        wanted = ["nginx: master", "nginx: worker", "hub serve", "rsync --daemon"]
    else:
        argv = ["edge", "serve", "--data", str(data), "--port", str(port), "--no-announce"]
        wanted = ["nginx: master", "nginx: worker"]
    proc = SupervisedProcess([sys.executable, "-m", "edge_agent.cli", *argv], cwd=REPO)
    proc.wait_http(f"http://127.0.0.1:{port}/api/v1/status", timeout_s=120 if command == "demo" else 30)
    return proc, port, wanted


@pytest.mark.slow
@pytest.mark.parametrize("command", ["serve", "demo"])
@pytest.mark.parametrize("how", ["SIGTERM to the command", "Ctrl-C (SIGINT to its process group)"])
def test_stopping_leaves_nothing_running(tmp_path, command, how):
    data = tmp_path / "data"
    proc, port, wanted = _start(command, data)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=10).status_code == 200
        tree = descendants(proc.pid)
        commands = " | ".join(_text(Path(f"/proc/{p}/cmdline").read_bytes()) for p in tree if _alive(p))
        for what in wanted:  # what must be running, so that its end means something
            assert what in commands, f"{what} is not running: {commands}"
        started = time.monotonic()
        if how.startswith("SIGTERM"):
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        proc.proc.wait(STOP_WITHIN_S + 5)
        took = time.monotonic() - started
        wait_until(lambda: not [p for p in tree if _alive(p)], GONE_WITHIN_S, "every process it started to end")
        assert not _group(proc.pid)
        assert not _naming(data), _naming(data)
        assert took <= STOP_WITHIN_S, f"took {took:.1f} s to stop:\n{proc.output()[-3000:]}"
        output = proc.output()
        assert "SIGKILL" not in output and "Traceback" not in output, output[-3000:]
        assert "已停止 Stopped" in output
        assert proc.returncode == 0, output[-3000:]
        assert not (data / "run" / "app.sock").exists()  # gunicorn took its socket away
    finally:
        proc.stop()


@pytest.mark.slow
def test_a_demo_whose_port_is_taken_stops_its_county_hub_and_says_why(tmp_path):
    data = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = SupervisedProcess([sys.executable, "-m", "edge_agent.cli", "demo", "--data", str(data), "--port", str(port)],
                                 cwd=REPO)
        try:
            assert proc.proc.wait(120) == 1
            output = proc.output()
            assert f"port {port} is in use" in output and "Traceback" not in output, output[-3000:]
            assert (data / "county-hub").is_dir()  # it was started before the port was found taken ...
            wait_until(lambda: not _naming(data), GONE_WITHIN_S, "the demo's hub to be stopped")  # ... and stopped
        finally:
            proc.stop()
