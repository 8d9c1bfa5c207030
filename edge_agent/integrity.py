"""Making sure a file whose bytes no longer match its hash is never served.

Hashing every response would cost the LAN its speed, so each blob is hashed the
first time it is served after it was written or changed on disk, and the result
is remembered against its size and modification time (in memory and in the
``blob_checks`` table, so a restart does not re-hash the library). A mismatch
is logged once at WARNING and reported by ``status()``; the file is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from hub_sync.errors import CorruptBlobError

from .errors import NotFoundError

if TYPE_CHECKING:
    from .appliance import Appliance

log = logging.getLogger(__name__)


class IntegrityGuard:
    def __init__(self, appliance: "Appliance") -> None:
        self.appliance = appliance
        self._known: dict[str, tuple[int, int, bool]] = {}
        self._lock = threading.Lock()

    def check(self, sha256: str, expected_size: int | None = None) -> None:
        """Raise CorruptBlobError if the blob's bytes no longer match its name."""
        store = self.appliance.store
        try:
            st = store.path_for(sha256).stat()
        except FileNotFoundError as exc:
            raise NotFoundError("文件不在本机，可能尚未同步。请稍后再试或联系技术员",
                                "file is not on this device (not synced yet?); try later or ask the technician") from exc
        key = (st.st_size, st.st_mtime_ns)
        known = self._known.get(sha256)
        if known is None:
            row = self.appliance.db.execute(
                "select size, mtime_ns, ok from blob_checks where sha256 = ?", [sha256]).fetchone()
            if row is not None:
                known = (row[0], row[1], bool(row[2]))
        if known is None or known[:2] != key:
            ok = (expected_size is None or st.st_size == expected_size) and store.verify(sha256)
            known = (*key, ok)
            self.appliance.db["blob_checks"].upsert(
                {"sha256": sha256, "size": key[0], "mtime_ns": key[1], "ok": int(ok), "checked_at": time.time()},
                pk="sha256")
            if not ok:
                log.warning("corrupt blob %s: bytes do not match the hash; refusing to serve it", sha256)
        with self._lock:
            self._known[sha256] = known
        if not known[2]:
            raise CorruptBlobError(
                "该文件已损坏，已停止提供。请让技术员重新同步资源",
                "this file is damaged and is no longer served; ask the technician to sync resources again",
                sha256=sha256,
            )

    def scrub(self) -> list[str]:
        """Re-hash every referenced blob now; return the corrupt ones."""
        bad = []
        for sha in sorted(self.appliance.catalogue.referenced_hashes()):
            self._known.pop(sha, None)
            self.appliance.db.execute("delete from blob_checks where sha256 = ?", [sha])
            try:
                self.check(sha)
            except CorruptBlobError:
                bad.append(sha)
            except NotFoundError:
                pass
        return bad

    def corrupt_count(self) -> int:
        return self.appliance.db.execute("select count(*) from blob_checks where ok = 0").fetchone()[0]
