"""The served appliance's background job for live lessons: pull the lessons of this school's
timetable that are on now or start within ``PULL_LEAD`` (``edge_agent.sync.live_schedule.to_pull``),
and every lesson asked for with ``LiveStore.want`` (the timetable's missed lessons), one thread
per lesson, and put each finished lesson's recording in the catalogue.

Nothing else is pulled: the hub relays every school's lessons, and over a 2 Mbit/s link a school
must never take another's. A lesson is started only once the hub has it (its ``head.json``
answers), so a lesson scheduled but not yet published costs one tiny request per pass. With no
lesson on and none wanted the job sends nothing over the WAN. ``school-edge live pull`` pulls
any lesson by hand, timetable or not."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import httpx

from hub_sync.core.errors import Problem
from hub_sync.core.tls import client_tls
from hub_sync.formats.live_manifest import Lesson

from edge_agent.library.importer import import_files
from edge_agent.live.puller import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, Puller
from edge_agent.live.store import LiveStore
from edge_agent.sync.hub_key import load_hub_key
from edge_agent.sync.live_link import hub_url_of
from edge_agent.sync.live_timetable import lessons_to_pull

if TYPE_CHECKING:  # the Appliance sits above this layer
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

POLL_S = 5.0  # how often the timetable is read (and a new lesson looked for at the hub)
STOP_JOIN_S = 15.0


def catalogue_recording(appliance: Appliance) -> Callable[[Path, Lesson], str]:
    """The function that puts a finished lesson's MP4 in ``appliance``'s catalogue (录播)."""

    def add(mp4: Path, lesson: Lesson) -> str:
        resource = import_files(appliance, [mp4], resource_id=f"live-{lesson.lesson}", title=f"录播 {lesson.title}",
                                kind="audio" if mp4.suffix == ".m4a" else "video", subject=lesson.subject, grade=lesson.grade, source="county",
                                keywords=f"录播 专递课堂 {lesson.teacher} {lesson.date}",
                                description=f"专递课堂录播 {lesson.teacher} {lesson.date}")
        return resource.id

    return add


class LiveJob:
    """The thread that starts pullers; ``stop`` ends them all."""

    def __init__(self, appliance: Appliance) -> None:
        self.appliance = appliance
        self.store = LiveStore(appliance.data_dir)
        self.stop_event = threading.Event()
        self.pullers: dict[str, threading.Thread] = {}
        self.poll_s = POLL_S
        self.passes = 0  # passes over the timetable done (what a test waits for)
        self.thread = threading.Thread(target=self._run, name="live-puller", daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S), trust_env=False, verify=client_tls()) as client:
            while not self.stop_event.is_set():
                try:
                    self._start_pullers(client)
                except (httpx.HTTPError, Problem, ValueError) as exc:
                    log.debug("live lessons: %s", exc)
                self.passes += 1
                self.stop_event.wait(self.poll_s)

    def wanted(self) -> list[str]:
        """The lessons this appliance should be pulling now: its timetable's lessons on now or about
        to start, then the lessons handed over with ``LiveStore.want``; recorded ones left out."""
        wanted = lessons_to_pull(self.appliance.db, self.appliance.clock) + self.store.wanted()
        return [lesson for lesson in dict.fromkeys(wanted) if not self.store.recorded(lesson)]

    def _start_pullers(self, client: httpx.Client) -> None:
        hub_url = hub_url_of(self.appliance)
        if not hub_url:
            return
        hub_key = None
        for lesson in self.wanted():
            running = self.pullers.get(lesson)
            if running is not None and running.is_alive():
                continue
            # only a lesson the hub has: a scheduled lesson not yet published is looked at next pass
            if client.get(f"{hub_url}/live/{lesson}/head.json").status_code != 200:
                continue
            hub_key = hub_key or load_hub_key(self.appliance.data_dir)
            puller = Puller(self.store, hub_url, lesson, hub_key, catalogue_recording(self.appliance))
            thread = threading.Thread(target=self._pull, args=(puller,), name=f"live-{lesson}", daemon=True)
            self.pullers[lesson] = thread
            thread.start()

    def _pull(self, puller: Puller) -> None:
        try:
            puller.run(self.stop_event)
        except Problem as exc:
            log.warning("live %s: %s", puller.lesson, exc)
        finally:
            puller.close()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in [self.thread, *self.pullers.values()]:
            if thread.is_alive():
                thread.join(STOP_JOIN_S)


def start_live_puller(appliance: Appliance) -> Callable[[], None]:
    """The background job (``edge_agent.wiring.jobs``): start it, return its stop."""
    job = LiveJob(appliance)
    job.thread.start()
    return job.stop
