"""Live lessons (专递课堂) on the wire: the hub-signed lesson record, the publisher-signed
manifests of segments, and the HLS playlists an appliance writes from what it verified.

Pure: no I/O. A lesson record (DSSE ``live-lesson``, signed by the hub's online key) names the
lesson and the publisher's Ed25519 key; every manifest (DSSE ``live-manifest``, signed by that
publisher key) lists the files of one update with their sha256. A receiver opens both before
it trusts a byte, and checks the lesson id and sequence number it asked for.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from securesystemslib.signer import Key, Signer

from hub_sync.core.errors import FormatError, SignatureError
from hub_sync.core.keys import public_key_from_dict
from hub_sync.formats.envelope import canonical_json, open_envelope, seal

LESSON_KIND = "live-lesson"
MANIFEST_KIND = "live-manifest"
# a lesson id names a folder and a URL on every side: as the timetable's (live_timetable.LESSON_ID)
LESSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
RUNG_ID = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# the only file paths a manifest may list: a rung's segment or a slide
FILE_PATH = re.compile(r"^(?:[a-z][a-z0-9]{0,15}/[0-9]{5}\.ts|slides/[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.(?:png|jpg|jpeg|webp))$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES_PER_MANIFEST = 2000


@dataclass(frozen=True)
class Rung:
    """One rung of the ladder: its id, bandwidth (bit/s) and what a player needs to know."""

    id: str
    bandwidth: int
    codecs: str
    resolution: str = ""  # empty for the audio-only rung


@dataclass(frozen=True)
class LiveFile:
    """One file of an update: a segment of a rung (``index`` >= 0) or a slide (``rung`` "slides")."""

    path: str
    sha256: str
    size: int
    rung: str
    index: int
    duration: float = 0.0


@dataclass
class Manifest:
    """One update of a lesson: sequence number ``seq`` (1, 2, ...), the ladder, new files."""

    lesson: str
    seq: int
    segment_s: float
    rungs: list[Rung]
    files: list[LiveFile] = field(default_factory=list)
    ended: bool = False


@dataclass(frozen=True)
class Lesson:
    """The hub's record of a lesson: what it is and who may publish it."""

    lesson: str
    title: str
    subject: str
    grade: str
    teacher: str
    date: str
    publisher_key: dict

    def key(self) -> Key:
        """The publisher's public key."""
        return public_key_from_dict(self.publisher_key)


def check_lesson_id(lesson: str) -> str:
    """``lesson`` if it is a valid lesson id, else FormatError."""
    if not isinstance(lesson, str) or not LESSON_ID.match(lesson):
        raise FormatError("课程编号无效（只用字母、数字、-、_ 和 .）", f"invalid lesson id {lesson!r} (letters, digits, -_.)")
    return lesson


def seal_lesson(lesson: Lesson, hub_signer: Signer) -> bytes:
    """The lesson record signed by the hub."""
    check_lesson_id(lesson.lesson)
    public_key_from_dict(lesson.publisher_key)
    return seal(LESSON_KIND, canonical_json(asdict(lesson)), hub_signer)


def open_lesson(data: bytes, hub_key: Key, lesson: str) -> Lesson:
    """Verify a lesson record with the hub's key and check it is for ``lesson``."""
    payload, _ = open_envelope(data, LESSON_KIND, [hub_key])
    try:
        record = Lesson(**json.loads(payload))
    except (ValueError, TypeError) as exc:
        raise FormatError("课程记录格式无效", f"malformed lesson record: {exc}") from exc
    if record.lesson != lesson:
        raise SignatureError("课程记录不是这节课的", f"lesson record is for {record.lesson!r}, not {lesson!r}")
    record.key()
    return record


def seal_manifest(manifest: Manifest, publisher: Signer) -> bytes:
    """A manifest signed by the publisher (checked first, so nothing invalid is ever signed)."""
    _check_manifest(manifest)
    return seal(MANIFEST_KIND, canonical_json(asdict(manifest)), publisher)


def open_manifest(data: bytes, publisher_key: Key, lesson: str, seq: int) -> Manifest:
    """Verify manifest number ``seq`` of ``lesson`` with the publisher's key and parse it."""
    payload, _ = open_envelope(data, MANIFEST_KIND, [publisher_key])
    try:
        raw: dict[str, Any] = json.loads(payload)
        manifest = Manifest(lesson=raw["lesson"], seq=raw["seq"], segment_s=float(raw["segment_s"]),
                            rungs=[Rung(**r) for r in raw["rungs"]], files=[LiveFile(**f) for f in raw["files"]],
                            ended=bool(raw["ended"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise FormatError("课程清单格式无效", f"malformed live manifest: {exc}") from exc
    _check_manifest(manifest)
    if manifest.lesson != lesson or manifest.seq != seq:
        raise SignatureError("课程清单不是所请求的那一份（可能被替换）",
                             f"manifest is {manifest.lesson!r} #{manifest.seq}, expected {lesson!r} #{seq}")
    return manifest


def _check_manifest(m: Manifest) -> None:
    check_lesson_id(m.lesson)
    problems = []
    if not isinstance(m.seq, int) or m.seq < 1:
        problems.append(f"seq {m.seq!r}")
    if not m.rungs or any(not RUNG_ID.match(r.id) or r.id == "slides" for r in m.rungs):
        problems.append("rungs")
    if len(m.files) > MAX_FILES_PER_MANIFEST:
        problems.append("too many files")
    rungs = {r.id for r in m.rungs}
    for f in m.files:
        if not FILE_PATH.match(f.path) or not SHA256.match(f.sha256) or f.size < 0 or f.index < 0:
            problems.append(f"file {f.path!r}")
        elif f.rung != "slides" and (f.rung not in rungs or f.path != segment_path(f.rung, f.index)):
            problems.append(f"file {f.path!r} of rung {f.rung!r}")
    if problems:
        raise FormatError("课程清单内容无效", "invalid live manifest: " + ", ".join(problems[:5]))


def segment_path(rung: str, index: int) -> str:
    """Where segment ``index`` of ``rung`` lives, relative to the lesson's folder."""
    return f"{rung}/{index:05d}.ts"


def media_playlist(entries: list[tuple[str, float, bool]], target_s: float, ended: bool,
                   start_offset_s: float | None = None, first: int = 0) -> str:
    """An HLS media playlist of ``entries``: (URI, duration, discontinuity before), the first being
    segment number ``first``; EVENT when it starts at the lesson's first segment (0)."""
    target = max([int(target_s + 0.999)] + [int(d + 0.999) for _, d, _ in entries])
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{target}", f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    if first == 0:  # an EVENT playlist only grows at its end; one whose head moved on is a plain live one
        lines.append("#EXT-X-PLAYLIST-TYPE:EVENT")
    if start_offset_s is not None and not ended:
        lines.append(f"#EXT-X-START:TIME-OFFSET=-{start_offset_s:.1f}")
    for uri, duration, discontinuity in entries:
        if discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines += [f"#EXTINF:{duration:.3f},", uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def master_playlist(variants: list[tuple[str, Rung]]) -> str:
    """An HLS master playlist of ``variants``: (URI, the rung it carries)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3"]
    for uri, rung in variants:
        attrs = f"BANDWIDTH={rung.bandwidth},CODECS=\"{rung.codecs}\""
        if rung.resolution:
            attrs += f",RESOLUTION={rung.resolution}"
        lines += [f"#EXT-X-STREAM-INF:{attrs}", uri]
    return "\n".join(lines) + "\n"
