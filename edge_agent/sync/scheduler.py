"""When the appliance talks to its hub: an apscheduler job, backoff, a window.

Every attempt uploads usage (whenever the link is up) and refreshes the signed
metadata; large content downloads (and software updates,
``edge_agent.sync.firmware_sync``) happen only inside ``sync_window`` (default
22:00-06:00, local time) unless a technician forces one with
``school-edge edge sync --force``. When the hub cannot be reached the next
attempt waits an exponentially growing, jittered delay ("full jitter"), so a
county's schools do not all knock at once when the hub comes back.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import datetime, time, timedelta
from typing import Callable

from hub_sync.core.errors import LinkError, Problem

log = logging.getLogger(__name__)

FIRST_ATTEMPT_DELAY_S = 5.0
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 3600.0


def backoff_delay(failures: int, base_s: float = BACKOFF_BASE_S, cap_s: float = BACKOFF_CAP_S,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after ``failures`` failed attempts in a row: uniform in
    [0, min(cap, base * 2**(failures-1))] ("full jitter"); 0 failures -> 0."""
    if failures <= 0:
        return 0.0
    ceiling = min(cap_s, base_s * (2 ** min(failures - 1, 32)))
    return rand() * ceiling


def parse_window(window: str) -> tuple[time, time]:
    """"22:00-06:00" -> (22:00, 06:00). Raises ValueError on anything else."""
    start, end = window.strip().split("-")
    return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())


def in_window(window: str, now: datetime | None = None) -> bool:
    """True when local time ``now`` is inside ``window`` (which may cross midnight).
    An empty window or "always" means any time."""
    if not window.strip() or window.strip() == "always":
        return True
    start, end = parse_window(window)
    t = (now or datetime.now()).time()
    if start == end:
        return True
    if start < end:
        return start <= t < end
    return t >= start or t < end


def _update_firmware(appliance, allow_download: bool) -> None:
    """The appliance software meant for this device: checked at every attempt, its
    files fetched only inside the window, then installed (``edge_agent.sync.firmware_sync``)."""
    from edge_agent.sync.firmware_sync import update_firmware

    update_firmware(appliance, allow_download=allow_download)


def _upload_usage(appliance) -> None:
    """Usage goes up whenever the link is up (edge_agent.sync.usage_sync, if present)."""
    try:
        from edge_agent.sync.usage_sync import upload_pending
    except ImportError:  # the usage half is optional for content sync
        return
    upload_pending(appliance)


class SyncScheduler:
    """One background job that reschedules itself: interval, or backoff on failure."""

    def __init__(self, appliance, interval_s: float | None = None) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self.appliance = appliance
        self.interval_s = float(interval_s or appliance.config.sync_interval_s)
        self.failures = 0
        self._lock = threading.Lock()
        self.scheduler = BackgroundScheduler(daemon=True)

    def start(self, first_delay_s: float = FIRST_ATTEMPT_DELAY_S) -> "SyncScheduler":
        self.scheduler.start()
        self._schedule(first_delay_s)
        return self

    def _schedule(self, delay_s: float) -> None:
        self.scheduler.add_job(self.tick, "date", run_date=datetime.now() + timedelta(seconds=delay_s),
                               id="school-edge-sync", replace_existing=True, misfire_grace_time=None)

    def tick(self) -> float:
        """One attempt; returns the delay before the next one."""
        from edge_agent.sync.content_sync import is_provisioned, sync_content

        with self._lock:
            delay = self.interval_s
            if is_provisioned(self.appliance):
                link_down = False
                # usage goes up whenever the link is up; content sync and software updates are tried either way
                window = in_window(self.appliance.config.sync_window)
                for name, step in (("usage upload", lambda: _upload_usage(self.appliance)),
                                   ("content sync", lambda: sync_content(self.appliance, allow_download=window)),
                                   ("software update", lambda: _update_firmware(self.appliance, window))):
                    try:
                        step()
                    except LinkError as exc:
                        link_down = True
                        log.debug("%s: hub unreachable: %s", name, exc.en)
                    except Problem as exc:
                        log.warning("%s refused: %s", name, exc.en)
                    except Exception:  # a background job must never die: log and try again later
                        log.exception("%s failed", name)
                if link_down:
                    self.failures += 1
                    delay = max(1.0, backoff_delay(self.failures))
                    log.log(logging.WARNING if self.failures == 1 else logging.DEBUG,
                            "hub unreachable (%d in a row), next try in %.0fs", self.failures, delay)
                else:
                    self.failures = 0
            if self.scheduler.running:
                self._schedule(delay)
            return delay

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)


def start_scheduler(appliance) -> Callable[[], None]:
    """A background job (``edge_agent.wiring``): start the sync job, return its stop function."""
    return SyncScheduler(appliance).start().stop
