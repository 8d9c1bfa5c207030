"""``school-edge firmware run``: the process the systemd unit starts. It serves the
current slot's version and keeps it serving.

Each turn it takes the install lock, resolves an install that did not finish
(``installer.recover``: a killed installer, a power cut), stops a service left
running by a supervisor that was killed, starts the current slot's ``edge
serve``, records it in ``service.json`` and lets the lock go. When the service
exits it starts it again (after ``RESTART_BACKOFF_S`` if it ran only briefly) —
but an install holds the lock while it stops the old version and tries the new
one, so the supervisor waits for the install to end and then serves whatever
the install left current: the new version when it committed, the old one
otherwise. An installer that dies before it stopped the old version (while
unpacking) leaves the lock free and an install pending: the supervisor resolves
it within a turn of its loop while the old version goes on serving. SIGTERM
(systemd's stop) stops the service and the supervisor.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Sequence

from hub_sync.core.processes import SupervisedProcess

from firmware.installer import STEPS, InstallLock, recover
from firmware.service import (SERVICE_ENV, clear_service, command, read_service, stop_group, stop_strays,
                              write_service)
from firmware.slots import current_slot
from firmware.state import load_state

log = logging.getLogger(__name__)

POLL_S = 0.2
QUICK_EXIT_S = 10.0       # a service that exits sooner than this is crashing, not stopped by an install
RESTART_BACKOFF_S = 2.0
SERVICE_LOG = "service.log"


class Supervisor:
    """Serve the current slot until ``stop()`` or SIGTERM (see the module docstring)."""

    def __init__(self, root: Path, data_dir: Path, host: str, port: int, serve_args: Sequence[str] = (),
                 strays: Sequence[str] = ()) -> None:
        """``strays`` mark what a SIGKILLed service leaves running (its nginx front's
        configuration path): stopped before the service starts again."""
        self.root, self.data_dir = Path(root).absolute(), Path(data_dir).absolute()
        self.host, self.port = host, port
        self.serve_args = list(serve_args)
        self.strays = list(strays)
        self.stopping = threading.Event()
        self.service: SupervisedProcess | None = None
        self.starts = 0

    def stop(self, *_signal) -> None:
        self.stopping.set()

    def _start(self) -> SupervisedProcess:
        slot = current_slot(self.root)
        argv, env, cwd = command(self.root, slot, ["edge", "serve", "--data", str(self.data_dir), *self.serve_args])
        env[SERVICE_ENV] = "1"
        process = SupervisedProcess(argv, env=env, cwd=cwd, log=self.root / SERVICE_LOG)
        write_service(self.root, process.pid, self.host, self.port, slot, self.strays)
        self.starts += 1
        log.info("serving from slot %s (pid %d)", slot or "factory", process.pid)
        return process

    def _turn(self, lock: InstallLock) -> SupervisedProcess | None:
        """Take the lock (waiting out an install), recover, start the service."""
        while not lock.acquire(wait=False):
            if self.stopping.wait(POLL_S):
                return None
        try:
            outcome = recover(self.root, self.data_dir)
            if outcome:
                log.warning("an unfinished install was resolved: %s", outcome)
            left = read_service(self.root)
            if left and (self.service is None or left.get("pid") != self.service.pid):
                stop_group(left.get("pid"))  # started by a supervisor that was killed
            stop_strays(self.strays)  # the front of a service that was SIGKILLed still holds the LAN port
            return None if self.stopping.is_set() else self._start()
        finally:
            lock.release()

    def _dead_install(self, lock: InstallLock) -> bool:
        """An installer died while the old version still served (before it stopped it):
        resolve it now. True when the service must stop first (never expected: the
        installer stops the service before the database changes)."""
        if load_state(self.root).pending is None or not lock.acquire(wait=False):
            return False
        try:
            pending = load_state(self.root).pending
            if pending is None:
                return False
            if STEPS.index(pending.get("step", "unpack")) >= STEPS.index("trial"):
                return True
            log.warning("an install died at %s; resolved: %s", pending.get("step"), recover(self.root, self.data_dir))
            return False
        finally:
            lock.release()

    def run(self) -> None:
        """Serve until stopped; blocks."""
        self.root.mkdir(parents=True, exist_ok=True)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        lock = InstallLock(self.root)
        try:
            while not self.stopping.is_set():
                self.service = self._turn(lock)
                if self.service is None:
                    break
                began = time.monotonic()
                while self.service.running() and not self.stopping.wait(POLL_S):
                    if self._dead_install(lock):
                        self.service.stop()  # the database may be half migrated: stop, recover, serve again
                if self.stopping.is_set():
                    break
                log.warning("service exited (%s)", self.service.returncode)
                self.service.stop(grace_s=0)
                if time.monotonic() - began < QUICK_EXIT_S and lock.acquire(wait=False):
                    lock.release()  # no install stopped it: it crashed; do not spin
                    self.stopping.wait(RESTART_BACKOFF_S)
        finally:
            if self.service is not None:
                self.service.stop()
                self.service = None
            clear_service(self.root)
            lock.close()
