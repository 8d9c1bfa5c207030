"""What a teaching point's appliance holds of its live lessons, and the LAN files made from it.

::

    DATA/live/<L>/master.m3u8, site.m3u8, status.json     the LAN's playlists and status (nginx serves DATA/live/)
    DATA/live/<L>/<rung>/<i>.ts, <rung>/index.m3u8        verified segments only
    DATA/live/<L>/slides/<name>                           verified slides
    DATA/live/index.json                                  {"lessons": [...]}
    DATA/live-state/<L>/lesson.json, m/<n>.json           the signed record and manifests, as verified

A segment is written (write-then-rename) only after its sha256 and size matched the signed
manifest, and a playlist lists only segments written, so what the LAN sees was signed by the
publisher. Nothing here talks to the network (``puller`` does).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from securesystemslib.signer import Key

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import SignatureError
from hub_sync.formats.live_manifest import (Lesson, LiveFile, Manifest, Rung, check_lesson_id, master_playlist,
                                            media_playlist, open_lesson, open_manifest)

LAN_DIR = "live"
STATE_DIR = "live-state"
START_BEHIND_SEGMENTS = 5  # a joining player starts this far behind the newest held segment (live.js: MARGIN_SEGMENTS)


class LessonState:
    """One lesson at this appliance: record, verified manifests, segments held."""

    def __init__(self, lan: Path, state: Path, lesson: str) -> None:
        self.lesson = check_lesson_id(lesson)
        self.lan, self.state = lan / lesson, state / lesson
        self.record: Lesson | None = None
        self.seq = 0
        self.rungs: list[Rung] = []
        self.segment_s = 2.0
        self.ended = False
        self.segments: dict[int, dict[str, LiveFile]] = {}  # index -> rung -> file, as signed
        self.slides: list[LiveFile] = []
        self.held: dict[int, set[str]] = {}  # index -> rungs written here
        self.slides_held: set[str] = set()
        self.recording: str | None = None
        self.state_name = "waiting"
        self.rung = ""

    # -- trust ----------------------------------------------------------------------------------
    def adopt_record(self, data: bytes, hub_key: Key) -> Lesson:
        """Verify the hub-signed lesson record and keep it."""
        record = open_lesson(data, hub_key, self.lesson)
        self.state.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state / "lesson.json", data)
        self.record = record
        return record

    def adopt_manifest(self, data: bytes, seq: int) -> Manifest:
        """Verify manifest ``seq`` with the publisher's key from the record, and keep it."""
        assert self.record is not None and seq == self.seq + 1
        manifest = open_manifest(data, self.record.key(), self.lesson, seq)
        (self.state / "m").mkdir(parents=True, exist_ok=True)
        atomic_write(self.state / "m" / f"{seq}.json", data)
        self._apply(manifest)
        return manifest

    def _apply(self, m: Manifest) -> None:
        self.seq, self.rungs, self.segment_s, self.ended = m.seq, m.rungs, m.segment_s, m.ended
        for f in m.files:
            if f.rung == "slides":
                self.slides.append(f)
            else:
                self.segments.setdefault(f.index, {})[f.rung] = f

    def load(self, hub_key: Key) -> None:
        """Read back what was verified before a restart (verified again) and the files held."""
        path = self.state / "lesson.json"
        if not path.is_file():
            return
        self.record = open_lesson(path.read_bytes(), hub_key, self.lesson)
        while (self.state / "m" / f"{self.seq + 1}.json").is_file():
            self._apply(open_manifest((self.state / "m" / f"{self.seq + 1}.json").read_bytes(), self.record.key(),
                                      self.lesson, self.seq + 1))
        for index, files in self.segments.items():
            for rung, f in files.items():
                if (self.lan / f.path).is_file():
                    self.held.setdefault(index, set()).add(rung)
        self.slides_held = {f.path for f in self.slides if (self.lan / f.path).is_file()}
        done = self.state / "recording.json"
        if done.is_file():
            self.recording = json.loads(done.read_text("utf-8"))["resource"]

    # -- files ----------------------------------------------------------------------------------
    def put(self, f: LiveFile, data: bytes) -> None:
        """Write a segment or slide whose bytes match the signed manifest; refuse any other."""
        if len(data) != f.size or hashlib.sha256(data).hexdigest() != f.sha256:
            raise SignatureError(f"片段 {f.path} 与签名清单不符，已拒收",
                                 f"{f.path} does not match the signed manifest; refused")
        target = self.lan / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
        if f.rung == "slides":
            self.slides_held.add(f.path)
        else:
            self.held.setdefault(f.index, set()).add(f.rung)

    def missing(self) -> list[int]:
        """Segment indices the manifests list of which no rung is held, oldest first."""
        return sorted(i for i in self.segments if not self.held.get(i))

    def live_index(self) -> int:
        return max(self.segments, default=-1)

    def held_index(self) -> int:
        """The newest index up to which every segment is held (-1: none)."""
        i = -1
        while self.held.get(i + 1):
            i += 1
        return i

    def best_held(self, index: int) -> str | None:
        """The best rung held of segment ``index`` (the ladder is ordered best first)."""
        held = self.held.get(index, set())
        return next((r.id for r in self.rungs if r.id in held), None)

    def recording_rung(self) -> Rung | None:
        """The rung most segments are held in, the better on a tie: the recording is made of one
        rung, so the puller fetches the few it lacks in that rung (audio only when the link
        carried audio only for most of the lesson; the county's copy has the picture)."""
        ids = [r.id for r in self.rungs]
        counts = {r: sum(1 for h in self.held.values() if r in h) for r in ids}
        best = max(ids, key=lambda r: (counts[r], -ids.index(r)), default=None)
        return next((r for r in self.rungs if r.id == best), None)

    # -- the LAN's view -------------------------------------------------------------------------
    def write_lan(self) -> None:
        """Rewrite the playlists and status.json from what is held (each file atomically)."""
        if not self.rungs:
            self.lan.mkdir(parents=True, exist_ok=True)
            atomic_write(self.lan / "status.json", _json(self.status()))
            return
        entries, last, first = [], None, 0
        pictured = {r.id: bool(r.resolution) for r in self.rungs}
        for index in range(self.held_index() + 1):  # a playlist never skips: players wait at a hole
            rung = self.best_held(index)
            f = self.segments[index][rung]
            if last is not None and pictured.get(rung) != pictured.get(last):
                # picture to sound only (or back): a player makes its buffers from the first segment
                # it loads, and one made with a picture track stalls where the picture ends, however
                # much sound follows; so the playlist starts again where the kind changed
                entries, first = [], index
            entries.append((f.path, f.duration, bool(entries) and rung != last))
            last = rung
        behind = START_BEHIND_SEGMENTS * self.segment_s
        atomic_write(self.lan / "site.m3u8", media_playlist(entries, self.segment_s, self.ended, behind, first).encode())
        for r in self.rungs:
            mine = [(f"{i:05d}.ts", self.segments[i][r.id].duration, False)
                    for i in sorted(self.held) if r.id in self.held[i]]
            (self.lan / r.id).mkdir(parents=True, exist_ok=True)
            atomic_write(self.lan / r.id / "index.m3u8", media_playlist(mine, self.segment_s, self.ended).encode())
        site = self.rungs[0] if last is None else next(r for r in self.rungs if r.id == last)
        atomic_write(self.lan / "master.m3u8", master_playlist([("site.m3u8", site)]).encode())
        atomic_write(self.lan / "status.json", _json(self.status()))

    def status(self) -> dict:
        """What the classroom screen page and a technician read (status.json)."""
        r = self.record
        held, live = self.held_index(), self.live_index()
        shown = [f for f in self.slides if f.path in self.slides_held and f.index <= held + 1]
        return {"lesson": self.lesson, "title": r.title if r else "", "subject": r.subject if r else "",
                "grade": r.grade if r else "", "teacher": r.teacher if r else "", "date": r.date if r else "",
                "state": self.state_name, "rung": self.rung, "held": sum(1 for h in self.held.values() if h),
                "live_index": live, "held_index": held, "behind_s": round(max(0, live - held) * self.segment_s, 1),
                "ended": self.ended,
                "slides": [{"url": f"/live/{self.lesson}/{f.path}", "at_index": f.index} for f in shown],
                "slide": f"/live/{self.lesson}/{shown[-1].path}" if shown else None,
                "recording": self.recording, "updated": round(time.time(), 3)}

    def mark_recorded(self, resource_id: str) -> None:
        self.recording = resource_id
        self.state_name = "recorded"
        atomic_write(self.state / "recording.json", _json({"resource": resource_id}))
        self.write_lan()


class LiveStore:
    """The live lessons under one appliance data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.lan_root = self.data_dir / LAN_DIR
        self.state_root = self.data_dir / STATE_DIR

    def lesson(self, lesson: str, hub_key: Key | None = None) -> LessonState:
        """The state of ``lesson`` (read back from disk when ``hub_key`` is given)."""
        state = LessonState(self.lan_root, self.state_root, lesson)
        if hub_key is not None:
            state.load(hub_key)
        return state

    def lessons(self) -> list[str]:
        """Every lesson this appliance holds something of."""
        if not self.state_root.is_dir():
            return []
        return sorted(p.name for p in self.state_root.iterdir() if (p / "lesson.json").is_file() or (p / "wanted").is_file())

    def status(self, lesson: str) -> dict | None:
        """The lesson's status.json as last written, or None."""
        try:
            return json.loads((self.lan_root / check_lesson_id(lesson) / "status.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def want(self, lesson: str) -> None:
        """Ask the background puller to fetch ``lesson`` (e.g. a missed lesson from the timetable)."""
        folder = self.state_root / check_lesson_id(lesson)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "wanted", b"")

    def wanted(self) -> list[str]:
        """The lessons asked for with ``want`` (the background puller fetches them whatever the hour)."""
        if not self.state_root.is_dir():
            return []
        return sorted(p.name for p in self.state_root.iterdir() if (p / "wanted").is_file())

    def recorded(self, lesson: str) -> bool:
        return (self.state_root / check_lesson_id(lesson) / "recording.json").is_file()

    def write_index(self) -> None:
        self.lan_root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.lan_root / "index.json", _json({"lessons": self.lessons()}))


def _json(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
