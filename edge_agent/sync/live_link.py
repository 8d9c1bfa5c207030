"""The live lesson's fast path between a teaching point and the hub, a few bytes at a time.

``exchange`` does one round: it sends the pupils' waiting messages (``live_outbox``) oldest
first and marks what the hub says it holds, then, while a lesson of the timetable is on,
fetches the lesson's state signed by the hub's online key (the open poll) and raises the
appliance's trusted clock to the hub's signed time. A failure (link down, garbage, a bad
signature) changes nothing here and is tried again next round.

``start_live_link`` is the served appliance's background job (``runner.Job``): a round every
``LIVE_FAST_S`` while a lesson is on or messages wait, every ``LIVE_IDLE_S`` otherwise. Each
round also hands the lessons missed in the last days to ``prefetch`` when one is given (the
media pipeline's puller fetches their recordings).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from hub_sync.core.errors import FormatError, LinkError, Problem, SignatureError
from hub_sync.core.tls import client_tls
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.live_interaction import STATE_KIND, check_state

from edge_agent.sync.hub_key import load_hub_key
from edge_agent.sync.live_outbox import mark_held, pending, pending_count, renumber_after, set_poll
from edge_agent.sync.live_timetable import current_schedule

if TYPE_CHECKING:
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/v1/hub/live/messages"
LIVE_FAST_S = 2.0       # a raised hand reaches the central teacher within a few seconds
LIVE_IDLE_S = 30.0      # no lesson on and nothing waiting: look at the timetable now and then
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SEND_BATCH = 200


def hub_url_of(appliance: Appliance) -> str:
    return (appliance.config.hub_url or appliance.identity("hub_url", "") or "").rstrip("/")


def exchange(appliance: Appliance, client: httpx.Client, hub_url: str) -> dict:
    """One round: send what waits, fetch the current lesson's signed state. Returns what it did;
    raises LinkError, SignatureError or FormatError (nothing changed)."""
    db = appliance.db
    sent = 0
    try:
        while True:
            batch = pending(db, SEND_BATCH)
            if not batch:
                break
            response = client.post(hub_url + MESSAGES_PATH,
                                   json={"device": appliance.device_id, "envelopes": [e for _, e in batch]})
            if response.status_code != 200:
                raise LinkError(f"县平台拒收互动消息（{response.status_code}）",
                                f"hub refused the interaction messages ({response.status_code}): {response.text[:200]}")
            held = int(response.json()["held"])
            if held < batch[0][0] - 1:
                # the hub lacks messages this appliance counted as delivered (a hub restored from a backup)
                log.warning("live link: the hub holds messages up to #%d only; numbering again after it", held)
                renumber_after(appliance, held)
                continue
            marked = mark_held(db, held)
            sent += marked
            if held < batch[-1][0]:
                break  # the hub stopped at a refusal: the next round starts there
        schedule = current_schedule(db, appliance.clock)
        poll = None
        if schedule.current is not None:
            lesson = schedule.current.lesson
            response = client.get(f"{hub_url}/api/v1/hub/live/{lesson}/state")
            if response.status_code != 200:
                raise LinkError(f"无法取得直播状态（{response.status_code}）", f"live state answered {response.status_code}")
            try:
                payload, _ = open_envelope(response.content, STATE_KIND, [load_hub_key(appliance.data_dir)])
            except SignatureError as exc:
                raise SignatureError("直播状态的签名无效，已忽略", f"live state is not signed by the hub ({exc.en})") from exc
            try:
                state = check_state(json.loads(payload), lesson)
            except ValueError as exc:
                raise FormatError("直播状态格式无效", f"live state is not JSON: {exc}") from exc
            appliance.clock.prove_timestamp(state["hub_time"])
            set_poll(db, lesson, state["poll"])
            poll = state["poll"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise LinkError("无法连接县平台（直播互动）", f"cannot reach the hub for live interaction: {exc}") from exc
    return {"sent": sent, "poll": poll, "current": schedule.current.lesson if schedule.current else None}


def lesson_is_on(appliance: Appliance) -> bool:
    return current_schedule(appliance.db, appliance.clock).current is not None


class LiveLink:
    """The background loop of ``start_live_link``."""

    def __init__(self, appliance: Appliance, prefetch: Callable[[str], None] | None = None) -> None:
        self.appliance = appliance
        self.prefetch = prefetch
        self.stop_event = threading.Event()
        self.prefetched: set[str] = set()

    def round(self, client: httpx.Client) -> float:
        """One round; returns the seconds to wait before the next."""
        hub_url = hub_url_of(self.appliance)
        db = self.appliance.db
        if hub_url:
            try:
                exchange(self.appliance, client, hub_url)
            except Problem as exc:
                log.info("live link: %s", exc.en)
            self._prefetch_missed()
        busy = pending_count(db) > 0 or lesson_is_on(self.appliance)
        return LIVE_FAST_S if busy else LIVE_IDLE_S

    def _prefetch_missed(self) -> None:
        if self.prefetch is None:
            return
        for lesson in current_schedule(self.appliance.db, self.appliance.clock).missed:
            if lesson.lesson in self.prefetched:
                continue
            try:
                self.prefetch(lesson.lesson)
                self.prefetched.add(lesson.lesson)
            except Problem as exc:
                log.info("live link: recording of %s not fetched yet: %s", lesson.lesson, exc.en)

    def run(self) -> None:
        with httpx.Client(timeout=TIMEOUT, trust_env=False, verify=client_tls()) as client:
            while not self.stop_event.is_set():
                try:
                    wait = self.round(client)
                except Exception:  # a job thread must outlive any one bad round
                    log.exception("live link round failed")
                    wait = LIVE_IDLE_S
                self.stop_event.wait(wait)


def start_live_link(appliance: Appliance, prefetch: Callable[[str], None] | None = None) -> Callable[[], None]:
    """Background job (``runner.Job``): the live link loop. Returns the function that stops it."""
    link = LiveLink(appliance, prefetch)
    thread = threading.Thread(target=link.run, name="live-link", daemon=True)
    thread.start()

    def stop() -> None:
        link.stop_event.set()
        thread.join(10)

    return stop

