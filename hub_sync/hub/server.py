"""``hub serve``: the hub's HTTP API under gunicorn and its rsync daemon, until SIGTERM/Ctrl-C.

The rsync daemon is a child of the gunicorn master: started when the master is
ready, stopped when it exits. The hub's database connections are closed before
the workers fork, so no connection crosses a fork.
"""

from __future__ import annotations

import logging
from typing import Callable

from hub_sync.core.wsgi_server import check_port_free, serve
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.hub import Hub
from hub_sync.hub.publisher import link_published_files, repo_for
from hub_sync.hub.rsync_daemon import RSYNC_MODULE, RsyncDaemon

log = logging.getLogger(__name__)

HUB_THREADS = 32


class HubServer:
    """HTTP (gunicorn, threaded) plus rsync daemon for one opened hub."""

    def __init__(self, hub: Hub, host: str, port: int, rsync_port: int | None) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self.rsync_port = rsync_port
        self.rsync: RsyncDaemon | None = None
        self.url = f"http://{host}:{port}"
        check_port_free(host, port)
        if rsync_port:
            check_port_free(host, rsync_port)
        repo_for(hub).refresh_timestamp()

    @property
    def rsync_url(self) -> str:
        return f"rsync://{self.host}:{self.rsync_port}/{RSYNC_MODULE}" if self.rsync_port else ""

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until SIGTERM or Ctrl-C; blocks."""
        app = create_hub_app(self.hub)

        def ready() -> None:
            if self.rsync_port:
                # the module serves published files only (see rsync_daemon); brought up to date here for
                # a hub that published before it had the folder, and after every publish
                self.rsync = RsyncDaemon(link_published_files(self.hub), self.hub.data_dir / "run", self.host, self.rsync_port)
            if on_ready:
                on_ready()

        def exit_() -> None:
            if self.rsync:
                self.rsync.stop()
            self.hub.close()

        self.hub.close()  # no connection may cross the fork into the workers
        serve(app, self.host, self.port, workers=1, threads=HUB_THREADS, on_ready=ready, on_exit=exit_,
              proc_name="school-edge-hub")
