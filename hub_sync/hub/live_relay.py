"""The hub's relay of live lessons (专递课堂): files under ``H/live/<lesson>/``.

::

    H/live/<L>/lesson.json      the lesson record, signed by the hub's online key
    H/live/<L>/head.json        {"seq": n, "ended": bool}: the newest accepted manifest
    H/live/<L>/m/<n>.json       manifest n, as the publisher signed it
    H/live/<L>/<rung>/<i>.ts    segments; H/live/<L>/slides/<name> slides

An update is accepted only when its manifest is signed by the publisher key of the lesson
record and is the next in sequence (the same bytes again are accepted: a retried post), and
only with the files it lists, each matching its sha256 and size. Updates of one lesson are
serialised with a lock file (the hub's gunicorn has several workers). Files are written
before the manifest that lists them, and the head last, so a reader never sees a manifest
whose files are missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from pathlib import Path
from typing import IO, Iterator, Mapping

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import FormatError, ReplayError, SignatureError, SyncError
from hub_sync.core.recording import join_segments
from hub_sync.formats.live_manifest import Lesson, Manifest, check_lesson_id, open_lesson, open_manifest, seal_lesson, segment_path

LIVE_DIR = "live"
CHUNK = 1 << 16


class LiveRelay:
    """The live lessons kept by one hub (its data folder and online key)."""

    def __init__(self, data_dir: Path, hub_signer) -> None:
        self.root = Path(data_dir) / LIVE_DIR
        self._signer = hub_signer

    def folder(self, lesson: str) -> Path:
        return self.root / check_lesson_id(lesson)

    def register(self, lesson: Lesson) -> bytes:
        """Sign and keep the record of ``lesson``; return the signed record."""
        record = seal_lesson(lesson, self._signer)
        folder = self.folder(lesson.lesson)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / "lesson.json", record)
        if not (folder / "head.json").exists():
            atomic_write(folder / "head.json", json.dumps({"seq": 0, "ended": False}).encode())
        return record

    def record(self, lesson: str) -> Lesson:
        """The lesson record (verified with the hub's own key)."""
        return open_lesson(self.read(lesson, "lesson.json"), self._signer.public_key, lesson)

    def head(self, lesson: str) -> dict:
        return json.loads(self.read(lesson, "head.json"))

    def read(self, lesson: str, name: str) -> bytes:
        path = self.path(lesson, name)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise LiveNotFoundError("没有这节直播课或文件", f"no such live lesson or file: {lesson}/{name}") from exc

    def path(self, lesson: str, name: str) -> Path:
        """The file ``name`` of ``lesson``; never outside the lesson's folder."""
        folder = self.folder(lesson).resolve()
        path = (folder / name).resolve()
        if folder not in path.parents:
            raise LiveNotFoundError("没有这个文件", f"no such file: {name}")
        return path

    def lessons(self) -> list[dict]:
        """Every lesson the hub holds with its head, newest registered first."""
        out = []
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
                if (folder / "lesson.json").is_file() and (folder / "head.json").is_file():
                    out.append({"lesson": folder.name, **json.loads((folder / "head.json").read_bytes())})
        return out

    def accept(self, lesson: str, manifest_bytes: bytes, files: Mapping[str, IO[bytes]]) -> Manifest:
        """Accept one update from the publisher: the signed manifest and the files it lists."""
        key = self.record(lesson).key()
        with self._locked(lesson):
            head = self.head(lesson)
            seq = head["seq"] + 1
            try:
                manifest = open_manifest(manifest_bytes, key, lesson, seq)
            except SignatureError:
                done = self.folder(lesson) / "m" / f"{head['seq']}.json"
                if head["seq"] and done.is_file() and done.read_bytes() == manifest_bytes:
                    return open_manifest(manifest_bytes, key, lesson, head["seq"])  # a retried post
                raise
            if head["ended"]:
                raise ReplayError("这节课已经结束", f"lesson {lesson} has ended")
            listed = {f.path for f in manifest.files}
            extra = set(files) - listed
            if extra:
                raise FormatError("上传了清单中没有的文件", f"files not in the manifest: {sorted(extra)[:3]}")
            for f in manifest.files:
                target = self.path(lesson, f.path)
                if f.path in files:
                    self._store(files[f.path], target, f.sha256, f.size)
                elif not (target.is_file() and _sha256(target) == f.sha256):
                    raise FormatError(f"缺少文件 {f.path}", f"file {f.path} is missing from the update")
            atomic_write(self.folder(lesson) / "m" / f"{seq}.json", manifest_bytes)
            atomic_write(self.folder(lesson) / "head.json", json.dumps({"seq": seq, "ended": manifest.ended}).encode())
            return manifest

    def manifests(self, lesson: str) -> Iterator[Manifest]:
        """Every accepted manifest of ``lesson``, in order."""
        key = self.record(lesson).key()
        for n in range(1, self.head(lesson)["seq"] + 1):
            yield open_manifest(self.read(lesson, f"m/{n}.json"), key, lesson, n)

    def make_recording(self, lesson: str, out: Path) -> Path:
        """Join the finished lesson's best video rung into the MP4 ``out`` (the county's copy
        for schools that were offline)."""
        if not self.head(lesson)["ended"]:
            raise LiveStateError("这节课还没有结束", f"lesson {lesson} has not ended yet")
        rungs, segments = [], {}
        for m in self.manifests(lesson):
            rungs = rungs or [r.id for r in m.rungs]
            for f in m.files:
                if f.rung != "slides":
                    segments.setdefault(f.rung, set()).add(f.index)
        rung = next(r for r in rungs if r in segments)
        return join_segments([self.path(lesson, segment_path(rung, i)) for i in sorted(segments[rung])], out)

    @contextlib.contextmanager
    def _locked(self, lesson: str) -> Iterator[None]:
        with open(self.folder(lesson) / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @staticmethod
    def _store(stream: IO[bytes], target: Path, sha256: str, size: int) -> None:
        digest, chunks, total = hashlib.sha256(), [], 0
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            chunks.append(chunk)
            total += len(chunk)
            if total > size:
                break
        if total != size or digest.hexdigest() != sha256:
            raise SignatureError(f"文件 {target.name} 与签名清单不符，已拒收",
                                 f"{target.parent.name}/{target.name} does not match the signed manifest")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, b"".join(chunks))


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class LiveNotFoundError(SyncError):
    code = "not_found"
    http_status = 404


class LiveStateError(SyncError):
    code = "live_state"
    http_status = 409
