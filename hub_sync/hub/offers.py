"""Teacher uploads offered to the county (谁接入谁负责): the review queue's storage.

An offer arrives two ways, both ending as one row here (one per device and the
device's resource id), always ``pending`` first:

* over the network: the teacher's ``shared`` usage event (title, kind, curriculum
  metadata, uploader, the files' hashes) is found by ``collect`` in the device's
  stored usage events; the files follow in signed uploads (``offer_api``) into the
  hub's store, hash-checked;
* on a stick: ``hub import-usb`` records it in ``usb_offered_uploads`` with the
  files already in the store; ``collect_usb`` copies it here.

An offer offered again (the teacher changed it after a rejection) goes back to
``pending`` with the new metadata; one already approved or withdrawn stays as it is.
The decisions (``reviews``) move ``state`` on with conditional UPDATEs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

from hub_sync.hub import scan_cursors
from hub_sync.hub.console_errors import NotFoundError
from hub_sync.hub.database import Database, transaction

__all__ = ["Offer", "Offers", "STATES", "CURRICULUM"]

log = logging.getLogger(__name__)
STATES = ("pending", "approved", "rejected", "withdrawn")
CURRICULUM = ("title", "kind", "stage", "grade", "subject", "edition", "chapter", "description")


@dataclass(frozen=True)
class Offer:
    id: int
    device_id: str
    school_code: str
    resource_id: str
    uploader: str
    meta: dict
    files: list
    origin: str
    state: str
    channel: str | None
    published_id: str | None
    reason: str
    decided_by: str | None
    decided_at: float | None
    received_at: float

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.resource_id)


_COLS = ("id, device_id, school_code, resource_id, uploader, meta, files, origin, state, channel, published_id, reason,"
         " decided_by, decided_at, received_at")


def _offer(row) -> Offer:
    values = list(row)
    values[5], values[6] = json.loads(values[5]), json.loads(values[6])
    return Offer(*values)


def _files(raw) -> list[dict]:
    out = []
    for f in raw if isinstance(raw, list) else []:
        if isinstance(f, dict) and isinstance(f.get("sha256"), str):
            out.append({"path": str(f.get("path") or "file"), "sha256": f["sha256"], "size": int(f.get("size") or 0),
                        "mime": str(f.get("mime") or "application/octet-stream")})
    return out


class Offers:
    """The offers (all SQL about them is here)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, device_id: str, school_code: str, data: dict, origin: str, now: float | None = None) -> int | None:
        """Keep one offer (see the module docstring); returns its id, or None if it was not changed."""
        resource_id = str(data.get("resource_id") or "")
        files = _files(data.get("files"))
        if not resource_id or not files:
            log.warning("offer from %s without a resource id or files; ignored", device_id)
            return None
        meta = {k: str(data.get(k) or "") for k in CURRICULUM}
        now = time.time() if now is None else now
        with transaction(self.db):
            row = self.db.execute("select id, state from offers where device_id = ? and resource_id = ?",
                                  [device_id, resource_id]).fetchone()
            if row is None:
                new_id = self.db.execute("insert into offers (device_id, school_code, resource_id, uploader, meta, files, origin,"
                                         " received_at) values (?, ?, ?, ?, ?, ?, ?, ?) returning id",
                                         [device_id, school_code, resource_id, str(data.get("uploader") or ""),
                                          json.dumps(meta, ensure_ascii=False), json.dumps(files), origin, now]).scalar()
                return int(new_id)
            if row[1] in ("approved", "withdrawn"):
                return None
            self.db.execute("update offers set meta = ?, files = ?, uploader = ?, origin = ?, state = 'pending', reason = '',"
                            " decided_by = null, decided_at = null, received_at = ? where id = ?",
                            [json.dumps(meta, ensure_ascii=False), json.dumps(files), str(data.get("uploader") or ""),
                             origin, now, row[0]])
            return int(row[0])

    def collect(self, device_id: str, school_code: str) -> int:
        """Record the ``shared`` events ``device_id`` uploaded since the last look; returns how many."""
        row = self.db.execute("select scanned_seq from offer_scan where device_id = ?", [device_id]).fetchone()
        scanned = row[0] if row else 0
        top = self.db.execute("select contiguous_seq from device_usage_state where device_id = ?", [device_id]).fetchone()
        top = top[0] if top else 0
        if top <= scanned:
            return 0
        found = 0
        with transaction(self.db):
            for obj, data in self.db.execute("select object, data from usage_events where device_id = ? and seq > ?"
                                             " and seq <= ? and verb = 'shared'", [device_id, scanned, top]).fetchall():
                try:
                    body = json.loads(data)
                except ValueError:
                    continue
                if obj.startswith("resource:") and isinstance(body, dict):
                    found += self.record(device_id, school_code, {**body, "resource_id": obj.split(":", 1)[1]}, "network") is not None
            self.db.execute("insert into offer_scan (device_id, scanned_seq) values (?, ?)"
                            " on conflict (device_id) do update set scanned_seq = excluded.scanned_seq", [device_id, top])
        return found

    def pass_over(self, device_id: str, strings: list[str], before: int, top: int) -> bool:
        """Inside the transaction that stored ``device_id``'s events ``before + 1`` .. ``top``
        (their batch's distinct ``strings``): when none is a ``shared`` event, mark them looked
        at without reading them back; return whether it did (if not, :meth:`collect` reads them)."""
        if "shared" in strings:
            return False
        return scan_cursors.pass_over(self.db, "offer_scan", device_id, before, top)

    def collect_usb(self) -> int:
        """Copy offers that came on a stick (``usb_offered_uploads``) not yet here, or newer."""
        found = 0
        for device_id, resource_id, school, meta, received in self.db.execute(
                "select u.device_id, u.resource_id, u.school_code, u.meta, u.received_at from usb_offered_uploads u"
                " left join offers o on o.device_id = u.device_id and o.resource_id = u.resource_id"
                " where o.id is null or (o.origin = 'usb' and o.state in ('pending', 'rejected') and o.received_at < u.received_at)").fetchall():
            found += self.record(device_id, school, {**json.loads(meta), "resource_id": resource_id}, "usb", received) is not None
        return found

    def get(self, offer_id: int) -> Offer:
        row = self.db.execute(f"select {_COLS} from offers where id = ?", [offer_id]).fetchone()
        if row is None:
            raise NotFoundError(f"没有提交记录 #{offer_id}", f"no offer #{offer_id}")
        return _offer(row)

    def by_published_id(self, published_id: str) -> Offer | None:
        row = self.db.execute(f"select {_COLS} from offers where published_id = ?", [published_id]).fetchone()
        return _offer(row) if row else None

    def list(self, states: tuple[str, ...] = ("pending",), school: str | None = None, limit: int = 200) -> list[Offer]:
        """Offers in these states (oldest first: first come, first reviewed), of one school if given."""
        sql = f"select {_COLS} from offers where state in ({','.join('?' * len(states))})"
        args: list = list(states)
        if school:
            sql, args = sql + " and school_code = ?", args + [school]
        return [_offer(r) for r in self.db.execute(sql + " order by received_at, id limit ?", args + [limit])]

    def wanted_files(self, device_id: str) -> dict[str, int]:
        """sha256 -> declared size of the files of ``device_id``'s pending offers (what it may upload)."""
        out: dict[str, int] = {}
        for (files,) in self.db.execute("select files from offers where device_id = ? and state = 'pending'", [device_id]):
            out.update({f["sha256"]: int(f.get("size") or 0) for f in json.loads(files)})
        return out
