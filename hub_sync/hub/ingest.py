"""The hub's usage storage: verify, chain-check and store device batches exactly once.

Rules (one transaction per batch, so a crash, a cut link or a database restart leaves
either the whole batch or nothing):

* the envelope must verify against the key of an enrolled, not revoked device,
  and the batch header must name that device and its school;
* the transaction first locks the device's cursor row, ``device_usage_state``
  (made on the device's first batch with ``insert ... on conflict do nothing``; on
  PostgreSQL ``select ... for update``, on SQLite the transaction's ``BEGIN IMMEDIATE``
  already admits one writer). Every decision below is taken on the locked cursor, so
  two ``hub serve`` processes (or two threads) given the same batch at the same moment
  store it once: the second waits for the first to commit, then sees a replay;
* a batch starting after ``contiguous_seq + 1`` is a **gap**: nothing is stored
  and the acknowledgement asks for ``resend_from = contiguous_seq + 1``;
* otherwise the batch must chain: ``prev`` is the hash of a batch of this device
  that ended at ``first_seq - 1`` (or empty when ``first_seq`` is 1); a broken
  chain is refused;
* only the events above ``contiguous_seq`` are inserted (a resend overlapping what is
  stored adds only the new ones), so no insert can meet a stored event: on PostgreSQL
  they go in with ``COPY usage_events FROM STDIN``, on SQLite with one executemany;
* a batch wholly at or below ``contiguous_seq`` (a replay) is answered but stores
  nothing, not even its hash.

``usage_events`` carries ``month``, the yyyymm of ``received_at`` in UTC+8; on
PostgreSQL the table is partitioned by it (``hub_sync.hub.partitions``). A process
remembers the months whose partition it has seen; a new month's partition is made
under the ``usage-partitions`` advisory lock in a short transaction of its own, before
the batch's (DDL on the parent table takes strong locks: never inside the hot path).

``store`` is ``ingest`` for a caller that keeps more with the batch: what it gives as
``with_events`` runs in the batch's transaction, before the roll-ups' shared change marks
(``usage_api``: the relay's copy, the device heard from, the readers' cursors), so a batch
and all that goes with it is one commit.

The acknowledgement names the highest contiguous sequence stored, the hash to chain
the next batch on, and the hub's time (``hub_sync.formats.usage_ack``); ``usage_api`` signs it with the online key.
All SQL of usage ingestion is here.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from itertools import repeat
from typing import Callable

from hub_sync.core.errors import FormatError, ReplayError
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.usage_ack import UsageAck
from hub_sync.formats.usage_batch import BATCH_KIND, Batch, decode_batch, read_header
from hub_sync.hub.database import Database, driver_errors, transaction
from hub_sync.hub.partitions import ensure_month_partitions, month_of
from hub_sync.hub.registry import Device, Registry
from hub_sync.hub.rollup import Rollup, raw_executemany

log = logging.getLogger(__name__)

EVENT_COLUMNS = "device_id, seq, month, ts, actor, verb, object, data, received_at"
# the months whose usage_events partition this process knows exists, per database
_known_months: "weakref.WeakKeyDictionary[Database, set[int]]" = weakref.WeakKeyDictionary()
_months_guard = threading.Lock()
# COPY's text format: these four characters would end a field or a row
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class StoredBatch:
    """One batch taken: its acknowledgement (``ack.stored`` new events; 0 for a replay or a
    gap), the verified device and batch, and the device's contiguous sequence before it."""

    ack: UsageAck
    device: Device
    batch: Batch
    before: int


class UsageIngest:
    """Usage batches into the hub database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ingest(self, envelope: bytes, revoked_ok: bool = False) -> UsageAck:
        """Verify, check and store one signed batch; return the acknowledgement.

        Raises FormatError (malformed), SignatureError (bad signature), DeviceError
        (unknown or revoked device), ReplayError (broken chain) or DatabaseUnavailable
        (the database went away: the transaction is rolled back); each changes nothing.
        ``revoked_ok``: a revoked device's batch is taken too (the province, for a batch its
        county stored before the revocation); its signature is checked all the same.
        """
        return self.store(envelope, revoked_ok).ack

    def store(self, envelope: bytes, revoked_ok: bool = False,
              with_events: Callable[[StoredBatch], None] | None = None) -> StoredBatch:
        """:meth:`ingest`, returning what was stored with the acknowledgement.

        ``with_events`` runs in the batch's transaction when new events were stored, after
        them and before the roll-ups' shared change marks (the rows every device's batch
        writes, so they are written last and their locks held shortest): whatever must be
        kept exactly with these events (the relay's copy, cursors over them) goes there."""
        # the envelope has one payload: the header peeked here is the one verified next
        header = read_header(peek_payload(envelope))
        now = time.time()
        month = month_of(now)
        self.ensure_month(month)
        # one transaction from the device's look-up on: one connection (and round trips) per batch, not two
        with transaction(self.db):
            registry = Registry(self.db)
            device = registry.get(header.device_id) if revoked_ok else registry.active(header.device_id)
            payload, _ = open_envelope(envelope, BATCH_KIND, [device.public_key])
            batch = decode_batch(payload)
            if header.school_code != device.school_code:
                raise FormatError(f"使用数据包的学校代码 {header.school_code} 与设备登记的不一致",
                                  f"batch school code {header.school_code} does not match the device's {device.school_code}")
            contiguous, chain = self._lock_state(header.device_id, now)
            if header.first_seq > contiguous + 1:
                log.warning("usage gap from %s: have up to %d, batch starts at %d; asking for %d onward",
                            header.device_id, contiguous, header.first_seq, contiguous + 1)
                ack = UsageAck(header.device_id, contiguous, batch.hash, chain, now, 0, resend_from=contiguous + 1)
                return StoredBatch(ack, device, batch, contiguous)
            if not self._chains(header):
                raise ReplayError("使用数据包与之前的数据包接不上（哈希链断开），已拒收",
                                  f"batch {header.first_seq}-{header.last_seq} from {header.device_id} does not chain "
                                  "to a batch the hub holds; refused", first_seq=header.first_seq)
            if header.last_seq <= contiguous:
                log.info("usage batch %s %d-%d already held; nothing stored", header.device_id, header.first_seq, header.last_seq)
                return StoredBatch(UsageAck(header.device_id, contiguous, batch.hash, chain, now, 0), device, batch, contiguous)
            first = contiguous + 1 - header.first_seq  # index of the first event above the cursor
            stored = self._insert(batch, first, month, now)
            self.db.execute("update device_usage_state set contiguous_seq = :seq, last_batch_hash = :hash, updated_at = :now"
                            " where device_id = :device",
                            {"seq": header.last_seq, "hash": batch.hash, "now": now, "device": header.device_id})
            self.db.execute("insert into usage_batches (device_id, batch_hash, first_seq, last_seq, prev_hash, events,"
                            " received_at) values (?, ?, ?, ?, ?, ?, ?) on conflict (device_id, batch_hash) do nothing",
                            [header.device_id, batch.hash, header.first_seq, header.last_seq, header.prev_hash, stored, now])
            result = StoredBatch(UsageAck(header.device_id, header.last_seq, batch.hash, batch.hash, now, stored),
                                 device, batch, contiguous)
            if with_events is not None:
                with_events(result)
            # the roll-ups take exactly the events above the cursor, in this transaction: never counted twice
            # (last: its county-wide change marks are the only rows other devices' batches also write)
            Rollup(self.db).add(header.device_id, batch, contiguous, header.school_code)
        log.info("usage batch %s %d-%d stored (%d new events)", header.device_id, header.first_seq, header.last_seq, stored)
        return result

    def ensure_month(self, month: int) -> None:
        """Make sure ``usage_events`` can take rows of ``month`` (PostgreSQL: its partition exists).

        Once per month and process: a short transaction of its own, under an advisory
        lock so two processes do not race to create the same partition."""
        if self.db.dialect != "postgresql":
            return
        with _months_guard:
            known = _known_months.setdefault(self.db, set())
        if month in known:
            return
        with transaction(self.db):
            self.db.lock("usage-partitions")
            ensure_month_partitions(self.db.connection(), [month])
        known.add(month)

    def state(self, device_id: str) -> tuple[int, str]:
        """(highest contiguous seq stored, hash to chain on) for a device."""
        row = self.db.execute("select contiguous_seq, last_batch_hash from device_usage_state where device_id = ?",
                              [device_id]).fetchone()
        return (row[0], row[1]) if row else (0, "")

    def count(self, device_id: str | None = None) -> int:
        """Events held (for one device or all)."""
        if device_id is None:
            return self.db.execute("select count(*) from usage_events").fetchone()[0]
        return self.db.execute("select count(*) from usage_events where device_id = ?", [device_id]).fetchone()[0]

    # -- inside the batch transaction -------------------------------------------------
    def _lock_state(self, device_id: str, now: float) -> tuple[int, str]:
        """The device's cursor, locked until the transaction ends (made at 0 on its first batch)."""
        # SQLite's BEGIN IMMEDIATE holds the only write lock already (and has no FOR UPDATE)
        sql = "select contiguous_seq, last_batch_hash from device_usage_state where device_id = :device" + self.db.for_update
        row = self.db.execute(sql, {"device": device_id}).first()
        if row is None:
            self.db.execute("insert into device_usage_state (device_id, contiguous_seq, last_batch_hash, updated_at)"
                            " values (:device, 0, '', :now) on conflict (device_id) do nothing",
                            {"device": device_id, "now": now})
            row = self.db.execute(sql, {"device": device_id}).first()
        return row[0], row[1]

    def _chains(self, header) -> bool:
        if header.first_seq == 1:
            return header.prev_hash == ""
        row = self.db.execute("select 1 from usage_batches where device_id = ? and batch_hash = ? and last_seq = ?",
                              [header.device_id, header.prev_hash, header.first_seq - 1]).fetchone()
        return row is not None

    def _insert(self, batch: Batch, first: int, month: int, now: float) -> int:
        """Insert the batch's events from index ``first`` on; return how many."""
        n = batch.header.count - first
        if n <= 0:
            return 0
        h = batch.header
        s = batch.strings
        if self.db.dialect == "postgresql":
            self._copy(batch, first, month, now)
            return n
        rows = zip(repeat(h.device_id), range(h.first_seq + first, h.last_seq + 1), repeat(month),
                   map((1000).__rtruediv__, batch.ts_ms[first:]), map(s.__getitem__, batch.actor[first:]),
                   map(s.__getitem__, batch.verb[first:]), map(s.__getitem__, batch.object[first:]),
                   map(s.__getitem__, batch.data[first:]), repeat(now))
        raw_executemany(self.db, f"insert into usage_events ({EVENT_COLUMNS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return n

    def _copy(self, batch: Batch, first: int, month: int, now: float) -> None:
        """COPY the events into ``usage_events`` (PostgreSQL): the rows are built as COPY's text
        format by C iterators (each distinct string escaped once), no Python per event."""
        h = batch.header
        esc = [v.translate(_COPY_ESCAPES) for v in batch.strings]
        e = esc.__getitem__
        lead = f"{h.device_id.translate(_COPY_ESCAPES)}\t"
        rows = map("\t".join, zip(
            map(str, range(h.first_seq + first, h.last_seq + 1)), repeat(str(month)),
            map(repr, map((1000).__rtruediv__, batch.ts_ms[first:])),
            map(e, batch.actor[first:]), map(e, batch.verb[first:]), map(e, batch.object[first:]),
            map(e, batch.data[first:])))
        tail = f"\t{now!r}\n"
        text = lead + (tail + lead).join(rows) + tail
        import psycopg  # PostgreSQL only: a SQLite hub does not load the driver

        raw = self.db.connection().connection.driver_connection
        try:
            with driver_errors(self.db), raw.cursor() as cur:
                with cur.copy(f"copy usage_events ({EVENT_COLUMNS}) from stdin") as copy:
                    copy.write(text.encode("utf-8"))
        except psycopg.errors.CheckViolation:
            # no partition for the month (one was detached or dropped meanwhile): learn again next time
            _known_months.pop(self.db, None)
            raise

def peek_payload(envelope: bytes) -> bytes:
    """The (not yet verified) payload of an envelope, only to read whose it claims to be."""
    try:
        return base64.b64decode(json.loads(envelope)["payload"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError("签名文件格式无效", f"not a signed envelope: {exc}") from exc


def open_device_envelope(registry: Registry, envelope: bytes, kind: str, what_zh: str, what_en: str):
    """``(device, payload)`` of a small JSON envelope a registered, active device signed.

    The payload's ``device`` field says whose it claims to be; the signature is then
    checked against that device's enrolled key, so nothing unverified is used."""
    try:
        claimed = str(json.loads(peek_payload(envelope)).get("device", ""))
    except (ValueError, AttributeError) as exc:
        raise FormatError(f"{what_zh}格式无效", f"malformed {what_en}: {exc}") from exc
    device = registry.active(claimed)
    payload, _ = open_envelope(envelope, kind, [device.public_key])
    return device, payload
