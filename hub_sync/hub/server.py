"""``hub serve``: the hub's HTTP API under gunicorn behind nginx, its rsync daemon and
its background jobs, until SIGTERM/Ctrl-C.

With the front (the default; ``hub_sync.hub.hub_front``) nginx listens on host:port
and gunicorn on a unix socket in ``H/run``; nginx is started once gunicorn is ready,
supervised by its master (started again if it dies) and stopped before it exits.
Without it (``--no-front``, for development and some tests) gunicorn listens on
host:port itself. The rsync daemon is a child of the gunicorn master too. Background
jobs (``jobs``: each ``fn(hub) -> stop``, e.g. the LRS relay) run in the worker.
The hub's database connections are closed before the workers fork, so no connection
crosses a fork.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Sequence

from werkzeug.middleware.proxy_fix import ProxyFix

from hub_sync.core.nginx_front import Front
from hub_sync.core.wsgi_server import check_port_free, serve
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.hub import Hub
from hub_sync.hub.hub_front import prepare_hub_front
from hub_sync.hub.publisher import link_published_files, refresh_timestamp
from hub_sync.hub.rsync_daemon import RSYNC_MODULE, RsyncDaemon

log = logging.getLogger(__name__)

HUB_THREADS = 32
JOBS_STOP_BUDGET_S = 3.0

# A background job: started in the worker with the opened hub, returns the function that stops it.
HubJob = Callable[[Hub], Callable[[], None]]


class HubServer:
    """HTTP (gunicorn, threaded) plus rsync daemon for one opened hub."""

    def __init__(self, hub: Hub, host: str, port: int, rsync_port: int | None, *, front: bool = True,
                 jobs: Sequence[HubJob] = ()) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.rsync_port = rsync_port
        self.rsync: RsyncDaemon | None = None
        self.jobs = tuple(jobs)
        self.url = f"http://{host}:{port}"
        check_port_free(host, port)
        if rsync_port:
            check_port_free(host, rsync_port)
        self.front: Front | None = None
        if front:  # FrontError (one line) without nginx, before anything starts
            nginx, paths = prepare_hub_front(hub.data_dir, host, port)
            self.front = Front(nginx, paths, host, port)
        refresh_timestamp(hub)

    @property
    def rsync_url(self) -> str:
        return f"rsync://{self.host}:{self.rsync_port}/{RSYNC_MODULE}" if self.rsync_port else ""

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM or Ctrl-C; blocks."""
        app = create_hub_app(self.hub)
        if self.front is not None:
            # the client's address: nginx appends it to X-Forwarded-For, and only nginx reaches the socket
            app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
        # the published folder (rsync module and nginx's files) brought up to date for a hub that
        # published before it had the folder; every publish keeps it so afterwards
        published = link_published_files(self.hub)
        front = self.front
        stops: list[Callable[[], None]] = []

        def ready() -> None:
            if front is not None:
                try:
                    front.start()
                except Exception:
                    exit_()
                    raise
            if self.rsync_port:
                self.rsync = RsyncDaemon(published, self.hub.data_dir / "run", self.host, self.rsync_port)
            if on_ready:
                on_ready()

        def exit_() -> None:
            if front is not None:
                front.stop()
            if self.rsync:
                self.rsync.stop()
            self.hub.close()

        def worker_started() -> None:
            stops.extend(job(self.hub) for job in self.jobs)

        def worker_exiting() -> None:
            _stop_jobs(stops)

        self.hub.close()  # no connection may cross the fork into the workers
        serve(app, self.host, self.port, workers=1, threads=HUB_THREADS, on_ready=ready, on_exit=exit_,
              proc_name="school-edge-hub", on_worker_start=worker_started, on_worker_exit=worker_exiting,
              unix_socket=front.paths.socket if front is not None else None,
              on_tick=front.check if front is not None else None)


def _stop_jobs(stops: list[Callable[[], None]]) -> None:
    """Stop the jobs, last first, within ``JOBS_STOP_BUDGET_S`` (a pass waiting on a silent LRS
    must not hold the worker's exit up until gunicorn kills it)."""
    def run() -> None:
        while stops:
            try:
                stops.pop()()
            except Exception:  # shutting down: log and go on stopping the rest
                log.exception("error while stopping a background job")

    stopper = threading.Thread(target=run, name="stop-hub-jobs", daemon=True)
    stopper.start()
    stopper.join(JOBS_STOP_BUDGET_S)
