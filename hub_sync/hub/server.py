"""``hub serve``: the hub's HTTP API and its rsync daemon, until SIGTERM/Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

from werkzeug.serving import make_server

from . import repo_api  # noqa: F401  (registers the repository blueprint)
from .app import create_hub_app
from .hub import Hub
from .publisher import repo_for
from .rsync_daemon import RsyncDaemon

log = logging.getLogger(__name__)


class HubServer:
    """HTTP (threaded WSGI) plus rsync daemon for one opened hub."""

    def __init__(self, hub: Hub, host: str, port: int, rsync_port: int | None) -> None:
        self.hub = hub
        repo_for(hub).refresh_timestamp()
        self.rsync = RsyncDaemon(hub.store.root, hub.data_dir / "run", host, rsync_port) if rsync_port else None
        try:
            self.http = make_server(host, port, create_hub_app(hub), threaded=True)
        except BaseException:
            if self.rsync:
                self.rsync.stop()
            raise
        self.url = f"http://{host}:{port}"
        self._thread: threading.Thread | None = None

    def start(self) -> "HubServer":
        """Serve in a background thread (demo); ``stop()`` ends it."""
        self._thread = threading.Thread(target=self.http.serve_forever, name="hub-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in this thread until SIGTERM or Ctrl-C."""
        def _stop(signum, frame):
            threading.Thread(target=self.http.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if on_ready:
            on_ready()
        try:
            self.http.serve_forever()
        finally:
            self.close()

    def stop(self) -> None:
        self.http.shutdown()
        if self._thread:
            self._thread.join(5)
        self.close()

    def close(self) -> None:
        self.http.server_close()
        if self.rsync:
            self.rsync.stop()
        self.hub.close()
