"""Running the app under gunicorn (threads, sendfile), never Flask's dev server.

gunicorn is embedded through its ``BaseApplication`` so ``school-edge edge serve``
is one process tree that shuts down cleanly on SIGTERM or Ctrl-C. The zeroconf
announcement lives in the master process and is withdrawn when it exits.

Memory: the master builds the app, then freezes its objects (``gc.freeze``) just
before forking, so the worker's garbage collector never writes to - and so never
copies - the pages it shares with the master; a worker gives its freed heap back
to the kernel (``malloc_trim``) once requests have paused for a moment.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.workers.gthread import ThreadWorker

from hub_sync.core.const import GRACEFUL_SHUTDOWN_S
from hub_sync.core.errors import PortInUseError

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
MALLOC_ARENAS = 1
IDLE_TRIM_AFTER_S = 1.0  # a worker trims its heap once no request started for this long
# glibc reads these only when a program starts (see reexec_with_malloc_tunables)
MALLOC_TUNABLES = "glibc.malloc.tcache_count=0"


def check_port_free(host: str, port: int) -> None:
    """Raise PortInUseError (one clear line) if ``host:port`` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(
                    f"端口 {port} 已被占用或无权使用。请用 --port 换一个端口，或先停止占用它的程序",
                    f"port {port} is in use or not permitted; pass another --port or stop the program using it",
                ) from exc
            raise PortInUseError(f"无法在 {host}:{port} 上监听：{exc.strerror}", f"cannot listen on {host}:{port}: {exc.strerror}") from exc


class _Arbiter(Arbiter):
    """gunicorn's master, calling ``on_tick`` once per turn of its loop (about once a
    second): the master supervises the children it started besides its workers."""

    on_tick: Callable[[], None] | None = None

    def manage_workers(self):
        super().manage_workers()
        if self.on_tick is not None:
            try:
                self.on_tick()
            except Exception:  # a supervision hiccup must not take the server down
                log.exception("error in the master's supervision tick")


class FrontWorker(ThreadWorker):
    """gunicorn's gthread worker for an app behind the nginx front (on its unix socket).

    A stopping gthread worker keeps its idle kept-alive connections open for a while
    (``STOP_KEEPALIVE_LINGER``, 2 s) in case a client is already sending on one. Behind
    the front the one client is nginx, whose idle upstream connections stay open until
    nginx itself stops - after the workers - so every stop waited those 2 s for nothing.
    Here the idle ones close at once: nginx drops an upstream connection that closes
    (retrying a request caught on one), and the listener is already closed anyway.
    Requests in progress still finish within the graceful timeout."""

    def _cap_keepalive(self, deadline):  # gunicorn >= 23 calls it as the worker starts to stop
        super()._cap_keepalive(min(deadline, time.monotonic()))


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict, on_tick: Callable[[], None] | None = None) -> None:
        self._app = app
        self._options = options
        self._on_tick = on_tick
        super().__init__()

    def run(self) -> None:
        arbiter = _Arbiter(self)
        arbiter.on_tick = self._on_tick
        try:
            arbiter.run()
        except RuntimeError as exc:
            sys.stderr.write(f"\nError: {exc}\n\n")  # as gunicorn's own run() says it
            sys.stderr.flush()
            sys.exit(1)

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._app


def serve(app: Flask, host: str, port: int, workers: int = 1, threads: int = 64,
          on_ready: Callable[[], None] | None = None, on_exit: Callable[[], None] | None = None,
          proc_name: str = "school-edge", on_worker_start: Callable[[], None] | None = None,
          on_worker_exit: Callable[[], None] | None = None, unix_socket: Path | None = None,
          on_tick: Callable[[], None] | None = None) -> None:
    """Serve ``app`` until SIGTERM/SIGINT. Blocks.

    With ``unix_socket`` gunicorn listens there (mode 0600) instead of on
    ``host:port`` (a front such as nginx listens there). ``on_tick`` runs in the
    master about once a second (supervising the children it started).

    ``on_ready``/``on_exit`` run in the master, ``on_worker_start``/``on_worker_exit``
    in each worker. Work that touches the database belongs in a worker: the master
    forks (a new worker after a crash, at any time), and a thread of the master
    caught holding a lock at that moment (SQLite's, for one) leaves the new worker
    waiting for it for ever."""
    if unix_socket is None:
        check_port_free(host, port)
    limit_malloc_arenas()
    trimmer = IdleTrimmer(BodyDrainer(app))
    options = gunicorn_options(host, port, workers, threads, on_ready, on_exit, proc_name)
    if unix_socket is not None:
        options["bind"] = f"unix:{unix_socket}"
        options["umask"] = 0o177  # the socket is 0600: only this user (nginx's workers run as it) connects
        options["worker_class"] = f"{__name__}.FrontWorker"  # nginx is the one client: no linger at stop
    options["pre_fork"] = lambda server, worker: _before_fork()  # in the master

    def worker_started(worker) -> None:
        trimmer.start()
        if on_worker_start:
            on_worker_start()

    options["post_worker_init"] = worker_started

    def worker_exiting(server, worker) -> None:
        # gunicorn calls this in the exiting worker (and in the master for a worker it found dead)
        itself = os.getpid() == worker.pid
        if itself:
            # told to stop once is enough: Ctrl-C reaches the worker and, relayed by the master, again,
            # and a late second signal would raise SystemExit in the middle of this clean-up, skip
            # _exit_now, and leave the interpreter waiting for the jobs' threads until gunicorn's SIGKILL
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
        try:
            if on_worker_exit:
                on_worker_exit()
        finally:
            if itself and getattr(worker, "booted", False) and not worker.alive:
                _exit_now()

    options["worker_exit"] = worker_exiting
    _Gunicorn(trimmer, options, on_tick).run()


def _exit_now() -> None:
    """End a worker that was told to stop, once its requests are answered and its
    jobs stopped: without waiting for threads it cannot interrupt (a job's thread in
    the middle of a download, a thread pool's idle threads), which the interpreter's
    own exit would join and gunicorn would end with SIGKILL after its grace."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _before_fork() -> None:
    """Collect the start-up's garbage, move what is left out of the collector's
    reach (the app lives as long as the process), and give free heap back, so the
    worker starts from as few pages as possible, all of them shared."""
    gc.collect()
    gc.freeze()
    trim_heap()


def trim_heap() -> None:
    """Give the heap's free memory back to the kernel (glibc ``malloc_trim``).

    glibc keeps what a burst of requests freed (query results, JSON, SQLite's
    caches) for reuse, so an idle server would stay at its busiest size.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        pass


DRAIN_ABOVE_BYTES = 64 * 1024  # gunicorn itself discards at most this much unread body, then closes


class BodyDrainer:
    """WSGI wrapper that reads what the app left unread of a large request body, after
    the answer was sent (an upload refused before its body was read: not logged in,
    over quota). gunicorn closes such a connection instead, and nginx, still sending
    the body it buffered, reports 502 instead of the app's answer. Small bodies and
    bodiless requests are passed through untouched (a file answer keeps its sendfile)."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        result = self.app(environ, start_response)
        if length <= DRAIN_ABOVE_BYTES:
            return result
        return _DrainAfter(result, environ["wsgi.input"])


class _DrainAfter:
    def __init__(self, result, body) -> None:
        self.result = result
        self.body = body

    def __iter__(self):
        return iter(self.result)

    def close(self) -> None:
        try:
            if hasattr(self.result, "close"):
                self.result.close()
        finally:
            try:
                while self.body.read(1024 * 1024):
                    pass
            except Exception:  # the client went away or sent a broken body: gunicorn closes the connection
                pass


class IdleTrimmer:
    """WSGI wrapper noting when requests start; its thread (in the worker) trims
    the heap once after each busy spell, when no request started for ``idle_s``."""

    def __init__(self, app, idle_s: float = IDLE_TRIM_AFTER_S) -> None:
        self.app = app
        self.idle_s = idle_s
        self._last_request = 0.0
        self._trimmed = True  # nothing to give back before the first request

    def __call__(self, environ, start_response):
        # no wrapping of the answer: gunicorn sendfiles only its own file wrapper
        self._last_request = time.monotonic()
        self._trimmed = False
        return self.app(environ, start_response)

    def start(self) -> None:
        """Trim now (the start-up's garbage) and then after every busy spell."""
        trim_heap()
        threading.Thread(target=self._run, name="heap-trim", daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self.idle_s / 2)
            if not self._trimmed and time.monotonic() - self._last_request >= self.idle_s:
                self._trimmed = True
                trim_heap()


def reexec_with_malloc_tunables(program_names: tuple[str, ...]) -> None:
    """Start this command again, once, with glibc's per-thread malloc caches off.

    Each request thread that has run keeps up to 7 freed chunks of every small size
    in a cache of its own, which ``malloc_trim`` cannot give back: with 64 threads
    that was ~5 MB after a busy spell. glibc reads ``GLIBC_TUNABLES`` only at start,
    so the command re-executes itself (same pid, arguments and output) before it
    has done anything. Only when this process is one of ``program_names`` (never a
    test runner calling the command in-process); already set: nothing to do.
    """
    current = os.environ.get("GLIBC_TUNABLES", "")
    argv = getattr(sys, "orig_argv", None)
    if "glibc.malloc.tcache_count" in current or not argv or not sys.platform.startswith("linux"):
        return
    if not sys.argv or not sys.argv[0].endswith(program_names):
        return
    os.environ["GLIBC_TUNABLES"] = f"{current}:{MALLOC_TUNABLES}" if current else MALLOC_TUNABLES
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *argv[1:]])


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas (inherited by the forked workers).

    glibc gives busy threads their own arena, up to 8 per core; with 64 threads
    each keeps its high-water mark, which multiplies resident memory after a busy
    hour. One arena costs little speed here (the hot path is sendfile, and the GIL
    serialises most allocations anyway) and measured 1-3 MB less than two after a
    load (bench/serve.py's API part, two runs each).
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, arenas)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        log.debug("mallopt unavailable; malloc arenas left as they are")


def gunicorn_options(host: str, port: int, workers: int = 1, threads: int = 64,
                     on_ready: Callable[[], None] | None = None,
                     on_exit: Callable[[], None] | None = None, proc_name: str = "school-edge") -> dict:
    """gunicorn's settings for the appliance: gthread workers, sendfile, quiet logs."""
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # no "sendfile" key: gunicorn turns sendfile OFF when the setting is given at all
        # (it mirrors the --no-sendfile flag); left unset, file bodies go by sendfile(2)
        "keepalive": 5,
        "timeout": 120,
        "graceful_timeout": GRACEFUL_SHUTDOWN_S,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": proc_name,
        "when_ready": (lambda server: on_ready()) if on_ready else (lambda server: None),
        "on_exit": (lambda server: on_exit()) if on_exit else (lambda server: None),
    }
