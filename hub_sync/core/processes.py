"""Running a helper process (a server) from Python: start it, poll until it answers, stop it.

The one way the tests, the benchmarks and the demo's county hub do it:

- the command runs in its own session, so its process group holds everything it
  forks (gunicorn workers, an rsync daemon) and a stop reaches all of them;
- its output goes to a file, never a pipe: a pipe nobody reads fills up (64 KiB)
  and then blocks the server in the middle of a request;
- waiting for it polls an HTTP URL and gives up early, quoting what it printed,
  if the process exits before it answers;
- stopping sends SIGTERM to the whole group, then SIGKILL to what is left of it
  after a deadline.

    server = SupervisedProcess([sys.executable, "-m", "edge_agent.cli", "hub", "serve", ...])
    server.wait_http("http://127.0.0.1:8081/api/v1/hub/status")
    ...
    server.stop()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence, TypeVar

import httpx

from hub_sync.core.errors import ProcessError
from hub_sync.core.tls import client_tls

START_TIMEOUT_S = 30.0  # a cold gunicorn + Flask start on a busy two-core machine
POLL_INTERVAL_S = 0.05
PROBE_TIMEOUT_S = 1.0  # one HTTP attempt while waiting for a server to answer
STOP_GRACE_S = 15.0  # SIGTERM, then SIGKILL for whatever still runs
KILL_WAIT_S = 5.0  # after SIGKILL the kernel ends a process at once; this only bounds the wait
OUTPUT_TAIL_CHARS = 4000  # how much of a process's output an error quotes

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout_s: float, what: str, interval_s: float = POLL_INTERVAL_S) -> T:
    """Call ``predicate`` until it returns something true and return that, or raise
    ``TimeoutError`` naming ``what`` (e.g. "the hub to answer") after ``timeout_s``.

    An exception raised by ``predicate`` is not caught: a predicate can give up early."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:g} s")
        time.sleep(interval_s)


def answers_http(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """True if something answers an HTTP GET of ``url`` (with any status)."""
    try:
        httpx.get(url, timeout=timeout_s, verify=client_tls()).close()
    except httpx.TransportError:
        return False
    return True


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # it exited while we looked
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        state, _ppid, pgrp = stat[stat.rindex(b")") + 2:].split(b" ", 3)[:3]
        if int(pgrp) == pgid and state not in (b"Z", b"X"):
            members.append(int(entry.name))
    return members


class SupervisedProcess:
    """A command running in its own session with its output in a file.

    ``log`` names the file (appended to); without it a temporary file is used and
    ``output()`` still returns everything the process printed, also after ``stop()``."""

    def __init__(self, argv: Sequence[str], *, cwd: Path | str | None = None, env: Mapping[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.argv = [str(a) for a in argv]
        self.log = log
        self._out = open(log, "ab") if log is not None else tempfile.TemporaryFile("w+b")
        self._captured = b""
        try:
            self.proc = subprocess.Popen(self.argv, cwd=cwd, env=dict(env) if env is not None else None,
                                         stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        except BaseException:
            self._out.close()
            raise
        self.pid = self.proc.pid  # also the process group's id (its own session)

    def __enter__(self) -> "SupervisedProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has ended (negative: the signal that ended it), else None."""
        return self.proc.poll()

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything the process has printed so far (stdout and stderr together)."""
        if self._out.closed:
            data = self._captured
        elif self.log is not None:
            self._out.flush()
            data = self.log.read_bytes()
        else:
            # pread, not seek and read: the process writes through this same open file, at its offset,
            # so a seek here would make its next lines overwrite the start of what it printed
            self._out.flush()
            fd = self._out.fileno()
            data = os.pread(fd, os.fstat(fd).st_size, 0)
        return data.decode("utf-8", "replace")

    def _tail(self) -> str:
        return self.output()[-OUTPUT_TAIL_CHARS:]

    def wait_http(self, url: str, timeout_s: float = START_TIMEOUT_S) -> "SupervisedProcess":
        """Poll ``url`` until it answers (any status). If the process exits first or
        ``timeout_s`` passes, stop it and raise ``ProcessError`` quoting its output."""

        def answered() -> bool:
            if not self.running():
                raise ProcessError(f"{self.argv[0]} 启动后退出（{self.returncode}）", f"{self.argv[0]} exited "
                                   f"with {self.returncode} before {url} answered", output=self._tail())
            return answers_http(url)

        try:
            wait_until(answered, timeout_s, f"{url} to answer")
        except TimeoutError as exc:
            self.stop()
            raise ProcessError(f"{url} 在 {timeout_s:g} 秒内没有应答", f"{exc}", output=self._tail()) from None
        except ProcessError:
            self.stop()
            raise
        return self

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = STOP_GRACE_S) -> int | None:
        """Send ``sig`` to the whole process group; SIGKILL the group if anything of it
        still runs after ``grace_s``. Returns the exit status of the process itself."""
        if self.running() or group_members(self.pid):
            self._signal_group(sig)
        deadline = time.monotonic() + grace_s
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
            # what it forked may outlive it (a worker finishing a request, a stray child)
            wait_until(lambda: not group_members(self.pid), max(0.0, deadline - time.monotonic()),
                       "the process group to end")
        except (subprocess.TimeoutExpired, TimeoutError):
            self._signal_group(signal.SIGKILL)
            self.proc.wait(KILL_WAIT_S)
            wait_until(lambda: not group_members(self.pid), KILL_WAIT_S, "the killed process group to end")
        if not self._out.closed:
            self._captured = self.output().encode("utf-8")
            self._out.close()
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL the whole process group now (a power cut, as far as the process can tell)."""
        return self.stop(signal.SIGKILL, grace_s=KILL_WAIT_S)

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:  # the group is already gone
            pass
