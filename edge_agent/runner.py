"""Running an opened appliance: web app, LAN announcement, scheduled jobs."""

from __future__ import annotations

import fcntl
import logging
from typing import Callable

import click

from edge_agent.appliance import Appliance
from edge_agent.app import create_app
from hub_sync.core.wsgi_server import check_port_free, serve


log = logging.getLogger(__name__)

# Other packages add callables here: fn(appliance) -> stop callable (run in one worker: BackgroundJobs)
BACKGROUND_HOOKS: list[Callable[[Appliance], Callable[[], None]]] = []


def _start_sync_scheduler(appliance: Appliance) -> Callable[[], None]:
    from edge_agent.sync.scheduler import start_scheduler

    return start_scheduler(appliance)


BACKGROUND_HOOKS.append(_start_sync_scheduler)


def urls_for(host: str, port: int) -> list[str]:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return [f"http://{shown}:{port}/"]


def _pool_connections(app, appliance: Appliance) -> None:
    """Mark request threads as pooled and hand their connection back after each request
    (the view has returned; a file body is sent afterwards without holding one)."""
    inner = app.wsgi_app

    def pooled_wsgi_app(environ, start_response):
        appliance.use_pool()
        return inner(environ, start_response)

    app.wsgi_app = pooled_wsgi_app
    app.teardown_appcontext(lambda exc: appliance.release())


def run_appliance(appliance: Appliance, banner: bool = True, extra_lines: list[str] | None = None) -> None:
    """Serve until SIGTERM/Ctrl-C, announcing on the LAN; blocks."""
    cfg = appliance.config
    check_port_free(cfg.host, cfg.port)
    app = create_app(cfg, appliance=appliance)
    # request threads share a few pooled SQLite connections, each handed back after its request
    _pool_connections(app, appliance)
    stops: list[Callable[[], None]] = []
    # read now: the master must hold no database connection when gunicorn forks workers
    school_code, device_id = appliance.school_code, appliance.device_id

    def on_ready() -> None:
        if cfg.advertise:
            from edge_agent.lan_announce import Announcer

            announcer = Announcer(cfg.host, cfg.port, school_code, device_id,
                                  role=cfg.role, interfaces=cfg.announce_interfaces)
            stops.append(announcer.close)
        if banner:
            click.echo(f"学校设备已启动 Appliance serving ({school_code or '未配置 unprovisioned'}, {device_id})")
            for url in urls_for(cfg.host, cfg.port):
                click.echo(f"  {url}")
            for line in extra_lines or []:
                click.echo(line)
            click.echo("按 Ctrl-C 停止 Press Ctrl-C to stop", err=False)

    def on_exit() -> None:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:  # shutting down: log and go on stopping the rest
                log.exception("error while stopping")
        appliance.close()
        if banner:
            click.echo("已停止 Stopped")

    jobs = BackgroundJobs(appliance)
    appliance.close()  # no connection may cross the fork into the workers
    serve(app, cfg.host, cfg.port, workers=cfg.workers, threads=cfg.threads, on_ready=on_ready, on_exit=on_exit,
          on_worker_start=jobs.start, on_worker_exit=jobs.stop)


class BackgroundJobs:
    """The ``BACKGROUND_HOOKS`` (sync scheduler, stick watcher), run by one worker.

    Not in the master: it forks workers, and a job caught holding a lock (SQLite's)
    at that instant would leave the new worker stuck. With several workers, the
    first to take ``background.lock`` in the data folder runs them; the kernel
    frees the lock when that worker exits, and its replacement takes it over."""

    LOCK_FILE = "background.lock"

    def __init__(self, appliance: Appliance) -> None:
        self.appliance = appliance
        self._stops: list[Callable[[], None]] = []

    def start(self) -> None:
        lock = open(self.appliance.data_dir / self.LOCK_FILE, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another worker runs them
            lock.close()
            return
        self._stops.append(lock.close)
        for hook in BACKGROUND_HOOKS:
            self._stops.append(hook(self.appliance))

    def stop(self) -> None:
        while self._stops:
            try:
                self._stops.pop()()
            except Exception:  # shutting down: log and go on stopping the rest
                log.exception("error while stopping a background job")
