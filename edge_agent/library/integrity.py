"""Making sure a file whose bytes no longer match its hash is never served.

Nothing is hashed on the serving path (nginx sends the bytes itself). Instead:

* every blob is hashed as it is written (``BlobStore.put_stream``; a sync's
  download is checked before it is moved in), so a blob gets its name only with
  the right bytes;
* the background scrub (``start_scrubber``, a job of every served appliance)
  re-hashes the catalogued blobs slowly (``scrub_rate_mb_s``), each again after
  ``SCRUB_EVERY_S``; a damaged blob is moved to ``content/.corrupt/`` (quarantine),
  so it is no longer in the store: nginx and the app answer 404 for it and the
  next sync fetches it again;
* ``scrub()`` (``school-edge edge verify``) re-hashes everything at once.

Verdicts are remembered in ``blob_checks`` against the blob's size and mtime, and
``status()`` counts the damaged ones. ``check()`` still refuses a blob known to be
damaged, for callers that read blobs themselves.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from hub_sync.core.const import MIB
from hub_sync.core.errors import CorruptBlobError, Problem
from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import NotFoundError

if TYPE_CHECKING:
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

SCRUB_EVERY_S = 7 * 24 * 3600  # each blob is re-hashed about once a week
SCRUB_IDLE_S = 60.0  # nothing due: look again after this long
SCRUB_CHUNK_BYTES = 1 * MIB
MB = 1000 * 1000


class IntegrityGuard:
    def __init__(self, appliance: "Appliance") -> None:
        self.appliance = appliance
        self._lock = threading.Lock()
        # one lock per blob being hashed, so 50 tablets opening the same new video
        # hash it once instead of fifty times
        self._hashing: dict[str, threading.Lock] = {}

    def check(self, sha256: str, expected_size: int | None = None) -> None:
        """Raise CorruptBlobError if the blob's bytes no longer match its name."""
        store = self.appliance.store
        try:
            st = store.path_for(sha256).stat()
        except FileNotFoundError as exc:
            raise NotFoundError("文件不在本机，可能尚未同步。请稍后再试或联系技术员",
                                "file is not on this device (not synced yet?); try later or ask the technician") from exc
        key = (st.st_size, st.st_mtime_ns)
        # the verdict lives in SQLite (one indexed read per request), so every worker
        # process sees at once what ``school-edge edge verify`` found
        known = self._verdict(sha256, key)
        if known is None:
            with self._lock:
                hashing = self._hashing.setdefault(sha256, threading.Lock())
            with hashing:
                known = self._verdict(sha256, key) or self._recheck(sha256, key, expected_size)
        if not known[2]:
            raise CorruptBlobError(
                "该文件已损坏，已停止提供。请让技术员重新同步资源",
                "this file is damaged and is no longer served; ask the technician to sync resources again",
                sha256=sha256,
            )

    def _verdict(self, sha256: str, key: tuple[int, int]) -> tuple[int, int, bool] | None:
        """The remembered verdict for this on-disk state (size, mtime), if any."""
        row = self.appliance.db.execute(
            "select size, mtime_ns, ok from blob_checks where sha256 = ?", [sha256]).fetchone()
        if row is not None and (row[0], row[1]) == key:
            return (row[0], row[1], bool(row[2]))
        return None

    def _recheck(self, sha256: str, key: tuple[int, int], expected_size: int | None) -> tuple[int, int, bool]:
        """Hash the blob now and remember the verdict against its on-disk state."""
        ok = (expected_size is None or key[0] == expected_size) and self.appliance.store.verify(sha256)
        with transaction(self.appliance.db):
            self.appliance.db["blob_checks"].upsert(
                {"sha256": sha256, "size": key[0], "mtime_ns": key[1], "ok": int(ok), "checked_at": time.time()},
                pk="sha256")
        if not ok:
            log.warning("corrupt blob %s: bytes do not match the hash; refusing to serve it", sha256)
        return (*key, ok)

    def scrub(self) -> list[str]:
        """Re-hash every referenced blob now; move the corrupt ones to ``.corrupt/``
        (so the next sync fetches them again) and return them."""
        bad = []
        for sha in sorted(self.appliance.catalogue.referenced_hashes()):
            if not self.appliance.store.has(sha):
                continue  # not here (yet, or quarantined): keep its last verdict
            with transaction(self.appliance.db):
                self.appliance.db.execute("delete from blob_checks where sha256 = ?", [sha])
            try:
                self.check(sha)
            except CorruptBlobError:
                bad.append(sha)
                self.appliance.store.quarantine(sha)
            except NotFoundError:  # removed while we were scrubbing
                pass
        return bad

    def corrupt_count(self) -> int:
        return self.appliance.db.execute("select count(*) from blob_checks where ok = 0").fetchone()[0]


def hash_slowly(path: Path, rate_mb_s: float, stop: threading.Event) -> str | None:
    """sha256 of the file at ``path``, read at most ``rate_mb_s`` MB a second (so the
    SD card keeps serving the class); None if ``stop`` was set meanwhile."""
    import hashlib

    digest = hashlib.sha256()
    started, done = time.monotonic(), 0
    with path.open("rb") as f:
        while chunk := f.read(SCRUB_CHUNK_BYTES):
            digest.update(chunk)
            done += len(chunk)
            ahead = done / (rate_mb_s * MB) - (time.monotonic() - started)
            if stop.wait(ahead) if ahead > 0 else stop.is_set():
                return None
    return digest.hexdigest()


class Scrubber:
    """Re-hashes catalogued blobs in the background and quarantines damaged ones.

    A blob not yet in ``blob_checks`` counts as checked when it was written (it was
    hashed then), so a fresh sync is not hashed twice; every blob is hashed again
    once its last check is ``every_s`` old, the oldest first."""

    def __init__(self, appliance: "Appliance", rate_mb_s: float, every_s: float = SCRUB_EVERY_S) -> None:
        self.appliance = appliance
        self.rate_mb_s = rate_mb_s
        self.every_s = every_s
        self.stop_event = threading.Event()

    def due(self, limit: int = 100) -> list[str]:
        """Catalogued blobs whose last check is older than ``every_s`` (oldest first)."""
        db, store = self.appliance.db, self.appliance.store
        now = time.time()
        due: list[tuple[float, str]] = []
        checked = dict(db.execute("select sha256, checked_at from blob_checks where ok = 1").fetchall())
        for sha in self.appliance.catalogue.referenced_hashes():
            last = checked.get(sha)
            if last is None:
                try:
                    last = store.path_for(sha).stat().st_mtime  # hashed as it was written
                except (FileNotFoundError, Problem):
                    continue  # not here: nothing to check
            if now - last >= self.every_s:
                due.append((last, sha))
        return [sha for _, sha in sorted(due)[:limit]]

    def scrub_one(self, sha256: str) -> bool | None:
        """Hash one blob now (slowly); quarantine it if damaged. True: fine, False:
        quarantined, None: gone meanwhile or stopped."""
        store = self.appliance.store
        path = store.path_for(sha256)
        try:
            st = path.stat()
            actual = hash_slowly(path, self.rate_mb_s, self.stop_event)
        except FileNotFoundError:
            return None
        if actual is None:
            return None
        ok = actual == sha256
        with transaction(self.appliance.db):
            self.appliance.db["blob_checks"].upsert(
                {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ok": int(ok),
                 "checked_at": time.time()}, pk="sha256")
        if not ok:
            store.quarantine(sha256)
            log.warning("corrupt blob %s: bytes do not match the hash; moved to quarantine, the next sync "
                        "fetches it again", sha256)
        return ok

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                due = self.due()
                for sha in due:
                    if self.stop_event.is_set():
                        break
                    self.scrub_one(sha)
            except Exception:  # a busy or closing database: try again later
                log.exception("background scrub failed; trying again later")
                due = []
            finally:
                self.appliance.release()
            if not due:
                self.stop_event.wait(SCRUB_IDLE_S)


def start_scrubber(appliance: "Appliance"):
    """Background job (runner.Job): the scrub, at the appliance's ``scrub_rate_mb_s``
    (0: off). Returns the function that stops it."""
    rate = appliance.config.scrub_rate_mb_s
    if rate <= 0:
        return lambda: None
    scrubber = Scrubber(appliance, rate, appliance.config.scrub_every_h * 3600)
    thread = threading.Thread(target=scrubber.run, name="blob-scrub", daemon=True)
    thread.start()

    def stop() -> None:
        scrubber.stop_event.set()
        thread.join(5)

    return stop
