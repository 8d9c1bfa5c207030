"""The teaching point's puller: one verified copy of a live lesson over the WAN.

Each round: the head (newest manifest number), the manifests not yet seen (verified with the
publisher key of the hub-signed record), then the missing segments oldest first, one rung each,
then the slides. The rung follows the link: the signed manifest gives every rung's segment
sizes, so at the measured rate (a moving average of segment fetches) the puller takes the best
rung whose segment would take at most ``DOWN_RATIO`` of its duration (video, smaller video,
audio only), and steps one up after ``UP_AFTER`` segments in a row for which the rung above
would take less than ``UP_RATIO``. When the WAN fails the puller keeps what it
holds (the LAN goes on playing it), says ``stalled`` and tries again every ``RETRY_S``; when the
link returns it fetches the missed segments first, so the recording has no gap.

When the lesson has ended and every segment is held, the puller fetches the segments its
recording rung lacks, joins them into one MP4 (M4A for the audio rung) and hands it to ``on_recording`` (the catalogue).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import httpx
from securesystemslib.signer import Key

from hub_sync.core.errors import LinkError, SignatureError
from hub_sync.core.recording import join_segments
from hub_sync.core.tls import client_tls
from hub_sync.formats.live_manifest import Lesson, LiveFile

from edge_agent.live.store import LessonState, LiveStore

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 8.0
RETRY_S = 1.0  # after a failed request: the link may be back any second
DOWN_RATIO = 0.8  # a rung whose segments would take longer than this share of their duration is too big
UP_RATIO = 0.35  # the rung above is taken when it would take less, UP_AFTER segments in a row
UP_AFTER = 4
RATE_WEIGHT = 0.5  # of the newest fetch in the measured rate
REFUSED_RETRY_S = 5.0  # a segment that did not match its signature is asked for again after this

OnRecording = Callable[[Path, Lesson], str]


class Puller:
    """Pulls one lesson from the hub into the appliance's live store."""

    def __init__(self, store: LiveStore, hub_url: str, lesson: str, hub_key: Key,
                 on_recording: OnRecording | None = None, client: httpx.Client | None = None) -> None:
        self.hub = hub_url.rstrip("/")
        self.lesson = lesson
        self.hub_key = hub_key
        self.store = store
        self.state: LessonState = store.lesson(lesson, hub_key)
        self.on_recording = on_recording
        self.client = client or httpx.Client(timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                                             trust_env=False, verify=client_tls())
        self.rung_pos = 0
        self.fast = 0
        self.rate: float | None = None  # the WAN's measured rate (bytes/s), a moving average of segment fetches
        self.refused: dict[str, float] = {}  # path -> when it was refused
        self.bytes = 0  # bytes of bodies received (segments, manifests, slides)

    # -- one round ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> bool:
        """Pull until the lesson is recorded (True) or ``stop`` is set (False)."""
        while not stop.is_set():
            try:
                if self.round(stop):
                    return True
                self._set_state("live" if not self.state.ended else "ended")
                stop.wait(self._poll_s())
            except (httpx.TransportError, LinkError) as exc:
                log.info("live %s: WAN unavailable (%s); serving what is held", self.lesson, exc)
                self._set_state("stalled")
                stop.wait(RETRY_S)
        return False

    def round(self, stop: threading.Event) -> bool:
        """Fetch what is new; True once the lesson's recording is in the catalogue."""
        s = self.state
        if s.recording:
            return True
        if s.record is None:
            s.adopt_record(self._get(f"/live/{self.lesson}/lesson.json"), self.hub_key)
            self.store.write_index()
        head = self._json(f"/live/{self.lesson}/head.json")
        while s.seq < head["seq"] and not stop.is_set():
            s.adopt_manifest(self._get(f"/live/{self.lesson}/m/{s.seq + 1}.json"), s.seq + 1)
        for index in s.missing():
            if stop.is_set():
                return False
            self._fetch_segment(index)
            self._set_state("live" if not s.ended else "ended")
        for f in s.slides:
            if f.path not in s.slides_held and not self._recently_refused(f.path):
                self._fetch(f)
        s.write_lan()
        if s.ended and not s.missing() and s.seq == head["seq"]:
            return self._record(stop)
        return False

    def _choose(self, index: int) -> str:
        """The rung to fetch segment ``index`` in: the signed sizes over the link's measured rate."""
        offered = self.state.segments[index]
        ladder = [r.id for r in self.state.rungs if r.id in offered]
        pos = min(self.rung_pos, len(ladder) - 1)
        if self.rate is None:
            return ladder[pos]

        def ratio(rung: str) -> float:  # the share of the segment's duration its fetch would take
            return offered[rung].size / self.rate / max(offered[rung].duration, 0.1)

        start = pos
        while pos < len(ladder) - 1 and ratio(ladder[pos]) > DOWN_RATIO:
            pos += 1
        if pos == start and pos > 0 and ratio(ladder[pos - 1]) < UP_RATIO:
            self.fast += 1
            if self.fast >= UP_AFTER:
                pos, self.fast = pos - 1, 0
        else:  # in a row, or not at all
            self.fast = 0
        if pos != start:
            log.info("live %s: link at %.0f kbit/s, %s -> %s", self.lesson, self.rate * 8 / 1000, ladder[start], ladder[pos])
        self.rung_pos = pos
        return ladder[pos]

    def _fetch_segment(self, index: int) -> None:
        s = self.state
        rung = self._choose(index)
        f = s.segments[index][rung]
        if self._recently_refused(f.path):
            return
        started = time.monotonic()
        if not self._fetch(f):
            return
        sample = f.size / max(time.monotonic() - started, 1e-3)
        self.rate = sample if self.rate is None else RATE_WEIGHT * sample + (1 - RATE_WEIGHT) * self.rate
        s.rung = rung
        s.write_lan()

    def _fetch(self, f: LiveFile) -> bool:
        data = self._get(f"/live/{self.lesson}/{f.path}")
        try:
            self.state.put(f, data)
        except SignatureError as exc:
            log.warning("live %s: %s", self.lesson, exc)
            self.refused[f.path] = time.monotonic()
            return False
        return True

    def _recently_refused(self, path: str) -> bool:
        return time.monotonic() - self.refused.get(path, -REFUSED_RETRY_S) < REFUSED_RETRY_S

    # -- the recording --------------------------------------------------------------------------
    def _record(self, stop: threading.Event) -> bool:
        s = self.state
        chosen = s.recording_rung()
        rung = chosen.id
        for index in sorted(s.segments):
            if stop.is_set():
                return False
            f = s.segments[index].get(rung)
            if f is not None and rung not in s.held.get(index, set()) and not self._recently_refused(f.path):
                self._fetch(f)
        lacking = [i for i in s.segments if rung in s.segments[i] and rung not in s.held.get(i, set())]
        if lacking:
            return False
        self._set_state("ended")
        if self.on_recording is None:
            return True
        paths = [s.lan / s.segments[i][rung].path for i in sorted(s.segments) if rung in s.segments[i]]
        with tempfile.TemporaryDirectory(dir=self.store.data_dir) as tmp:
            # audio only: an .m4a, which the catalogue files as audio
            mp4 = join_segments(paths, Path(tmp) / f"{self.lesson}.{'mp4' if chosen.resolution else 'm4a'}")
            resource = self.on_recording(mp4, s.record)
        s.mark_recorded(resource)
        log.info("live %s: recorded as %s", self.lesson, resource)
        return True

    # -- HTTP -----------------------------------------------------------------------------------
    def _get(self, path: str) -> bytes:
        answer = self.client.get(self.hub + path)
        if answer.status_code != 200:
            raise LinkError(f"县平台回答 {answer.status_code}", f"the hub answered {answer.status_code} for {path}")
        self.bytes += len(answer.content)
        return answer.content

    def _json(self, path: str) -> dict:
        try:
            return json.loads(self._get(path))
        except ValueError as exc:
            raise LinkError("县平台的回答无效", f"the hub answered garbage for {path}") from exc

    def _poll_s(self) -> float:
        return max(0.2, self.state.segment_s / 4)

    def _set_state(self, name: str) -> None:
        if self.state.state_name != name or name == "stalled":
            self.state.state_name = name
            self.state.write_lan()

    def close(self) -> None:
        self.client.close()


def pull_lesson(data_dir: Path, hub_url: str, lesson: str, hub_key: Key, on_recording: OnRecording | None = None,
                stop: threading.Event | None = None) -> bool:
    """Pull ``lesson`` into ``data_dir`` until it is recorded (True) or ``stop`` is set."""
    puller = Puller(LiveStore(data_dir), hub_url, lesson, hub_key, on_recording)
    try:
        return puller.run(stop or threading.Event())
    finally:
        puller.close()
