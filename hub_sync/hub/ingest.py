"""The hub's usage storage: verify, chain-check and store device batches exactly once.

Rules (one transaction per batch, so a crash or a cut link leaves either the whole
batch or nothing):

* the envelope must verify against the key of an enrolled, not revoked device,
  and the batch header must name that device and its school;
* a batch starting after ``contiguous_seq + 1`` is a **gap**: nothing is stored
  and the acknowledgement asks for ``resend_from = contiguous_seq + 1``;
* otherwise the batch must chain: ``prev`` is the hash of a batch of this device
  that ended at ``first_seq - 1`` (or empty when ``first_seq`` is 1); a broken
  chain is refused;
* events are inserted with ``insert or ignore`` on (device_id, seq): the same batch
  twice, or a resend overlapping what is stored, changes nothing;
* a batch wholly at or below ``contiguous_seq`` (a replay) is answered but stores
  nothing, not even its hash.

The acknowledgement names the highest contiguous sequence stored, the hash to chain
the next batch on, and the hub's time (``hub_sync.formats.usage_ack``); ``usage_api`` signs it with the online key.
All SQL of usage ingestion is here.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from itertools import repeat

from hub_sync.core.errors import FormatError, ReplayError
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.usage_ack import UsageAck
from hub_sync.formats.usage_batch import BATCH_KIND, decode_batch, read_header
from hub_sync.hub.database import Database, transaction
from hub_sync.hub.registry import Registry
from hub_sync.hub.rollup import Rollup

log = logging.getLogger(__name__)


class UsageIngest:
    """Usage batches into the hub database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ingest(self, envelope: bytes) -> UsageAck:
        """Verify, check and store one signed batch; return the acknowledgement.

        Raises FormatError (malformed), SignatureError (bad signature), DeviceError
        (unknown or revoked device) or ReplayError (broken chain); each changes nothing.
        """
        # the envelope has one payload: the header peeked here is the one verified next
        header = read_header(peek_payload(envelope))
        device = Registry(self.db).active(header.device_id)
        payload, _ = open_envelope(envelope, BATCH_KIND, [device.public_key])
        batch = decode_batch(payload)
        if header.school_code != device.school_code:
            raise FormatError(f"使用数据包的学校代码 {header.school_code} 与设备登记的不一致",
                              f"batch school code {header.school_code} does not match the device's {device.school_code}")
        now = time.time()
        with transaction(self.db):
            contiguous, chain = self.state(header.device_id)
            if header.first_seq > contiguous + 1:
                log.warning("usage gap from %s: have up to %d, batch starts at %d; asking for %d onward",
                            header.device_id, contiguous, header.first_seq, contiguous + 1)
                return UsageAck(header.device_id, contiguous, batch.hash, chain, now, 0, resend_from=contiguous + 1)
            if not self._chains(header):
                raise ReplayError("使用数据包与之前的数据包接不上（哈希链断开），已拒收",
                                  f"batch {header.first_seq}-{header.last_seq} from {header.device_id} does not chain "
                                  "to a batch the hub holds; refused", first_seq=header.first_seq)
            if header.last_seq <= contiguous:
                log.info("usage batch %s %d-%d already held; nothing stored", header.device_id, header.first_seq, header.last_seq)
                return UsageAck(header.device_id, contiguous, batch.hash, chain, now, 0)
            stored = self.db.executemany(
                "insert or ignore into usage_events (device_id, seq, ts, actor, verb, object, data, received_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?)",
                zip(repeat(header.device_id), *batch.columns(), repeat(now)),
            )
            # the roll-ups take exactly the events above the cursor, in this transaction: never counted twice
            Rollup(self.db).add(header.device_id, batch, contiguous, header.school_code)
            self.db.execute(
                "insert or replace into device_usage_state (device_id, contiguous_seq, last_batch_hash, updated_at)"
                " values (?, ?, ?, ?)", [header.device_id, header.last_seq, batch.hash, now])
            self.db.execute(
                "insert or ignore into usage_batches values (?, ?, ?, ?, ?, ?, ?)",
                [header.device_id, batch.hash, header.first_seq, header.last_seq, header.prev_hash, stored, now])
        log.info("usage batch %s %d-%d stored (%d new events)", header.device_id, header.first_seq, header.last_seq, stored)
        return UsageAck(header.device_id, header.last_seq, batch.hash, batch.hash, now, stored)

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

    def _chains(self, header) -> bool:
        if header.first_seq == 1:
            return header.prev_hash == ""
        row = self.db.execute("select 1 from usage_batches where device_id = ? and batch_hash = ? and last_seq = ?",
                              [header.device_id, header.prev_hash, header.first_seq - 1]).fetchone()
        return row is not None


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
