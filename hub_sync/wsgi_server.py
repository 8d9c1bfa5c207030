"""Running the app under gunicorn (threads, sendfile), never Flask's dev server.

gunicorn is embedded through its ``BaseApplication`` so ``school-edge edge serve``
is one process tree that shuts down cleanly on SIGTERM or Ctrl-C. The zeroconf
announcement lives in the master process and is withdrawn when it exits.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import socket
from typing import Callable

from flask import Flask
from gunicorn.app.base import BaseApplication

from .errors import PortInUseError

GRACEFUL_SHUTDOWN_S = 5

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
MALLOC_ARENAS = 2


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


class _Gunicorn(BaseApplication):
    def __init__(self, app: Flask, options: dict) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self._app


def serve(app: Flask, host: str, port: int, workers: int = 1, threads: int = 64,
          on_ready: Callable[[], None] | None = None, on_exit: Callable[[], None] | None = None,
          proc_name: str = "school-edge") -> None:
    """Serve ``app`` until SIGTERM/SIGINT. Blocks."""
    check_port_free(host, port)
    limit_malloc_arenas()
    _Gunicorn(app, gunicorn_options(host, port, workers, threads, on_ready, on_exit, proc_name)).run()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas (inherited by the forked workers).

    glibc gives busy threads their own arena, up to 8 per core; with 64 threads
    each keeps its high-water mark, which multiplies resident memory after a busy
    hour. Two arenas cost little speed here: the hot path is sendfile and SQLite.
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
