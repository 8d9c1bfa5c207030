"""Running an opened appliance: web app, LAN announcement, background jobs.

``run_appliance`` serves what it is handed: extra ``blueprints`` for the app,
background ``jobs`` (each ``fn(appliance) -> stop``, run in one worker) and
``stops`` run in the master when it exits. ``edge_agent.wiring`` decides what a
served appliance has; nothing registers itself here by being imported.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from typing import Callable, Iterable, Sequence

import click

from flask import Blueprint

from edge_agent.app import create_app
from edge_agent.appliance import Appliance
from edge_agent.errors import ConfigError
from edge_agent.lan_announce import announced_addresses
from hub_sync.core.wsgi_server import check_port_free, serve


log = logging.getLogger(__name__)

FRONTS = ("nginx", "none")

# A background job: started with the opened appliance, returns the function that stops it.
Job = Callable[[Appliance], Callable[[], None]]


def urls_for(host: str, port: int, interfaces: str = "all") -> list[str]:
    """The addresses to print for a server bound to ``host``: on all interfaces, the
    LAN addresses tablets can reach (the ones announced), then this machine's own."""
    if host not in ("0.0.0.0", ""):
        return [f"http://{host}:{port}/"]
    shown = [*announced_addresses(host, interfaces), "127.0.0.1"]
    return [f"http://{a}:{port}/" for a in dict.fromkeys(shown)]


def _pool_connections(app, appliance: Appliance) -> None:
    """Mark request threads as pooled and hand their connection back after each request
    (the view has returned; a file body is sent afterwards without holding one)."""
    inner = app.wsgi_app

    def pooled_wsgi_app(environ, start_response):
        appliance.use_pool()
        return inner(environ, start_response)

    app.wsgi_app = pooled_wsgi_app
    app.teardown_appcontext(lambda exc: appliance.release())


def run_appliance(appliance: Appliance, *, blueprints: Iterable[Blueprint] = (), jobs: Sequence[Job] = (),
                  stops: Sequence[Callable[[], None]] = (), banner: bool = True,
                  extra_lines: list[str] | None = None) -> None:
    """Serve until SIGTERM/Ctrl-C, announcing on the LAN; blocks.

    ``blueprints`` are served besides the appliance's own areas, ``jobs`` run in
    one worker, ``stops`` run in the master as it exits (after the workers).

    With ``front = nginx`` (the default) nginx listens on host:port, started once
    gunicorn listens on its unix socket and stopped before the master exits; see
    ``edge_agent.front``."""
    stops = list(stops)
    try:
        front, cfg, jobs = _front(appliance, list(jobs))
        app = create_app(cfg, appliance=appliance, blueprints=blueprints)
    except BaseException:
        _run_stops(stops)  # what the caller started already (the demo's hub) must not outlive a failed start
        raise
    if front is not None:
        from edge_agent.front import BLOB_LOCATION

        app.config["X_ACCEL_BLOBS"] = BLOB_LOCATION  # the app names a blob, nginx sends it
    # request threads share a few pooled SQLite connections, each handed back after its request
    _pool_connections(app, appliance)
    # read now: the master must hold no database connection when gunicorn forks workers
    school_code, device_id = appliance.school_code, appliance.device_id

    def on_ready() -> None:
        if front is not None:
            try:
                front.start()
            except Exception:
                on_exit()  # the demo's hub and anything else already started
                raise
            stops.append(front.stop)
        if cfg.advertise:
            from edge_agent.lan_announce import Announcer

            announcer = Announcer(cfg.host, cfg.port, school_code, device_id,
                                  role=cfg.role, interfaces=cfg.announce_interfaces)
            stops.append(announcer.close)
        if banner:
            click.echo(f"学校设备已启动 Appliance serving ({school_code or '未配置 unprovisioned'}, {device_id})")
            for url in urls_for(cfg.host, cfg.port, cfg.announce_interfaces):
                click.echo(f"  {url}")
            for line in extra_lines or []:
                click.echo(line)
            click.echo("按 Ctrl-C 停止 Press Ctrl-C to stop", err=False)

    def on_exit() -> None:
        _run_stops(stops)
        appliance.close()
        if banner:
            click.echo("已停止 Stopped")

    background = BackgroundJobs(appliance, jobs)
    appliance.close()  # no connection may cross the fork into the workers
    serve(app, cfg.host, cfg.port, workers=cfg.workers, threads=cfg.threads, on_ready=on_ready, on_exit=on_exit,
          on_worker_start=background.start, on_worker_exit=background.stop,
          unix_socket=front.paths.socket if front is not None else None,
          on_tick=front.check if front is not None else None)


def _front(appliance: Appliance, jobs: list[Job]):
    """(the nginx front or None, the app's config, the jobs) for the appliance's ``front`` setting.
    Raises the one-line errors before anything starts: port taken, nginx missing or refusing."""
    cfg = appliance.config
    if cfg.front not in FRONTS:
        raise ConfigError(f"设置 front 只能是 {' 或 '.join(FRONTS)}", f"setting front must be one of {', '.join(FRONTS)}")
    check_port_free(cfg.host, cfg.port)
    if cfg.front != "nginx":
        return None, cfg, jobs
    from edge_agent.front import Front, prepare
    from edge_agent.library.public_links import PublicLinks

    front = Front(cfg, prepare(cfg, appliance.store.root))  # FrontError (one line) without nginx
    links = PublicLinks(appliance, front.paths.public)
    links.refresh()
    if hasattr(cfg, "trust_front_header"):
        cfg = cfg.replace(trust_front_header=True)  # X-Real-IP is nginx's, on the unix socket only
    return front, cfg, [*jobs, links.job]


def _run_stops(stops: list[Callable[[], None]]) -> None:
    """Run ``stops`` last first, each once (the list empties), logging failures."""
    while stops:
        try:
            stops.pop()()
        except Exception:  # shutting down: log and go on stopping the rest
            log.exception("error while stopping")


class BackgroundJobs:
    """Background jobs (sync scheduler, stick watcher), run by one worker.

    Not in the master: it forks workers, and a job caught holding a lock (SQLite's)
    at that instant would leave the new worker stuck. With several workers, the
    first to take ``background.lock`` in the data folder runs them; the kernel
    frees the lock when that worker exits, and its replacement takes it over."""

    LOCK_FILE = "background.lock"
    STOP_BUDGET_S = 2.0

    def __init__(self, appliance: Appliance, jobs: Sequence[Job]) -> None:
        self.appliance = appliance
        self.jobs = tuple(jobs)
        self._stops: list[Callable[[], None]] = []

    def start(self) -> None:
        lock = open(self.appliance.data_dir / self.LOCK_FILE, "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another worker runs them
            lock.close()
            return
        self._stops.append(lock.close)
        for job in self.jobs:
            self._stops.append(job(self.appliance))

    def stop(self) -> None:
        """Stop the jobs, waiting at most ``STOP_BUDGET_S``: a sync in the middle of a
        download must not hold the worker's exit up (gunicorn would SIGKILL it); a sync
        cut short is safe and is resumed by the next one."""
        stops, self._stops = self._stops, []
        stopper = threading.Thread(target=self._run_stops, args=(stops,), name="stop-background-jobs", daemon=True)
        stopper.start()
        stopper.join(self.STOP_BUDGET_S)
        if stopper.is_alive():
            log.warning("background jobs still busy after %.0f s; exiting without them", self.STOP_BUDGET_S)

    @staticmethod
    def _run_stops(stops: list[Callable[[], None]]) -> None:
        while stops:
            try:
                stops.pop()()
            except Exception:  # shutting down: log and go on stopping the rest
                log.exception("error while stopping a background job")
