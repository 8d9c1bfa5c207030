"""Making sure a file whose bytes no longer match its hash is never served.

Hashing every response would cost the LAN its speed, so each blob is hashed the
first time it is served after it was written or changed on disk, and the result
is remembered against its size and modification time in the ``blob_checks``
table (so a restart does not re-hash the library, and every worker process sees
the same verdict). A mismatch is logged at WARNING and reported by ``status()``;
the file is refused. Decay that keeps size and mtime (bit rot on an SD card) is
found by ``scrub()`` (``school-edge edge verify``), which re-hashes everything.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from hub_sync.core.errors import CorruptBlobError
from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import NotFoundError

if TYPE_CHECKING:
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)


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
