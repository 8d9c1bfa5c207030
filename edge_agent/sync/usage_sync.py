"""Usage up: send the journal's unacknowledged events to the hub in signed batches.

``upload_pending(appliance)`` is what the scheduler calls whenever the link is up.
Per batch: read events after the acknowledged sequence, encode them
(``hub_sync.formats.usage_batch``) chained to the hash the hub last acknowledged, sign them
with the device key (DSSE), POST them, verify the hub's signed acknowledgement, and
only then, in one transaction, prune what it covers and remember the chain hash,
then raise the appliance's trusted clock to the hub's signed time. The acknowledgement also carries the hub's messages for this
school after the last one applied here (``edge_agent.sync.downlink``), applied in order;
when no batch was due, one small poll asks for them instead (the hub answers 204,
an empty body, when nothing waits). Any failure (link cut, timeout, garbage, a bad signature)
raises a ``SyncError`` with the reason, is logged, and changes nothing here; the
next call simply sends again, which the hub stores exactly once. Retrying is the
scheduler's job, not this module's.

Files this module reads in the data folder (written by provisioning):

    keys/device.pem               the device's Ed25519 key (``DEVICE_KEY_FILE``)
    trust/hub_online_key.json     the hub's online public key, a ``public_key_dict``
                                  (``HUB_ONLINE_KEY_FILE``), pinned at provisioning
    sync/tuf/root.json            the newest TUF root the content sync verified; once it
                                  exists, its timestamp key is the hub's online key
                                  (``load_hub_key``), so a rotated key is followed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import logging
from dataclasses import dataclass, field

import httpx
import sqlite_utils

from hub_sync.formats.downlink import POLL_CONTENT_TYPE
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_ack import UsageAck, open_ack
from hub_sync.core.errors import DeviceError, FormatError, LinkError, ReplayError, SignatureError, SyncError
from hub_sync.core.keys import load_signer
from hub_sync.core.sqlite_db import transaction
from hub_sync.core.tls import client_tls
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE, BATCH_KIND, batch_hash, encode_batch

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.sync import device_report
from edge_agent.sync.downlink import DownlinkResult, apply_answer, check_answer, open_answer, poll_request
from edge_agent.sync.downlink import cursor as downlink_cursor
from edge_agent.sync import offer_files
from edge_agent.sync.hub_key import load_hub_key

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

USAGE_PATH = "/api/v1/hub/usage"
DOWNLINK_PATH = "/api/v1/hub/downlink"
# A school's day is ~12,000 events (~110 KB signed); a full batch is ~400 KB: ~2 s at 2 Mbit/s,
# short enough to get through a flaky link, big enough that the envelope costs nothing.
BATCH_MAX_EVENTS = 50_000
UPLOAD_CONNECT_TIMEOUT_S = 10.0
UPLOAD_WRITE_TIMEOUT_S = 30.0     # per chunk: a dead link fails here, not after minutes
UPLOAD_READ_TIMEOUT_S = 60.0      # the hub stores a big batch before it answers
UPLOAD_POOL_TIMEOUT_S = 5.0
POLL_MAX_ROUNDS = 50              # answers per sync (each up to 20 messages): a long queue finishes next time

@dataclass(frozen=True)
class SignedBatch:
    """A signed batch ready to travel (HTTP now, a USB stick later)."""

    envelope: bytes
    hash: str
    first_seq: int
    last_seq: int
    prev_hash: str


@dataclass
class UploadResult:
    """What one ``upload_pending`` call did."""

    batches: int = 0
    events_sent: int = 0
    acked_seq: int = 0
    pruned: int = 0
    pending: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    hub_time: float | None = None
    resend_requests: list[int] = field(default_factory=list)
    downlink: DownlinkResult = field(default_factory=DownlinkResult)


def upload_pending(appliance: Appliance, hub_url: str | None = None, timeout: httpx.Timeout | float | None = None,
                   max_events: int = BATCH_MAX_EVENTS) -> UploadResult:
    """Send every unacknowledged event, batch after batch; return what was done.

    Raises LinkError (hub unreachable, timed out, answered garbage), SignatureError
    (acknowledgement not signed by the hub), DeviceError (the hub refuses this
    device) or ReplayError / FormatError (the hub refuses the batch). Nothing is
    pruned unless a verified acknowledgement covers it.
    """
    hub_url = (hub_url or appliance.config.hub_url or appliance.identity("hub_url", "") or "").rstrip("/")
    if not hub_url:
        raise LinkError("没有配置县平台地址，请先完成设备开通（provision apply）",
                        "no hub URL configured; provision the appliance first (provision apply)")
    hub_key = load_hub_key(appliance.data_dir)
    if timeout is None:
        timeout = httpx.Timeout(connect=UPLOAD_CONNECT_TIMEOUT_S, write=UPLOAD_WRITE_TIMEOUT_S,
                                read=UPLOAD_READ_TIMEOUT_S, pool=UPLOAD_POOL_TIMEOUT_S)
    result = UploadResult(acked_seq=appliance.journal.acknowledged())
    with httpx.Client(timeout=timeout, verify=client_tls()) as client:
        _upload_batches(appliance, client, hub_url, hub_key, max_events, result)
        if (result.batches == 0 or result.downlink.more) and _poll_downlink(appliance, client, hub_url, hub_key, result):
            # applying messages journals them (and a transfer's space): send that up now, not next time
            _upload_batches(appliance, client, hub_url, hub_key, max_events, result)
        offer_files.send(appliance, client, hub_url)  # the files of teachers' offers, after the events that announce them
        device_report.send(appliance, client, hub_url)  # the fleet page's state, after the usage it counts
    result.pending = appliance.journal.pending_count()
    return result


def _upload_batches(appliance: Appliance, client: httpx.Client, hub_url: str, hub_key, max_events: int,
                    result: UploadResult) -> None:
    """Batch after batch until nothing is pending; messages riding on the acks are applied as they come."""
    gaps = 0
    after, prev = appliance.journal.acknowledged(), chain_hash(appliance, appliance.journal.acknowledged())
    while True:
        batch = build_next_batch(appliance, after, prev, max_events)
        if batch is None:
            break
        ack = _send(client, hub_url, batch, appliance, hub_key, result)
        result.batches += 1
        result.events_sent += batch.last_seq - batch.first_seq + 1
        result.hub_time = ack.hub_time
        result.pruned += apply_ack(appliance, ack)
        result.acked_seq = appliance.journal.acknowledged()
        if ack.downlink is not None:
            result.downlink.add(apply_answer(appliance, check_answer(ack.downlink, appliance.device_id, appliance.school_code)))
        if ack.resend_from is not None:
            # a gap: the hub holds less than this batch assumed; send again from where it asks,
            # once per call (a second gap in a row means the hub lost data: a person must look)
            result.resend_requests.append(ack.resend_from)
            gaps += 1
            held = appliance.journal.pending(ack.resend_from - 1, 1)
            if gaps > 1 or not held or held[0].seq != ack.resend_from:
                log.warning("hub asks for events from %d, which this device no longer holds", ack.resend_from)
                raise ReplayError(f"县平台要求从第 {ack.resend_from} 条重发，但本机已没有这些记录，请联系县技术员",
                                  f"hub asks to resend from {ack.resend_from}, which this device no longer holds; "
                                  "call the county technician")
        after, prev = ack.acked_seq, ack.chain_hash


def _poll_downlink(appliance: Appliance, client: httpx.Client, hub_url: str, hub_key, result: UploadResult) -> bool:
    """Ask for waiting messages until none are left; True if any was applied or failed."""
    done = False
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    for _ in range(POLL_MAX_ROUNDS):
        try:
            response = client.post(hub_url + DOWNLINK_PATH, content=poll_request(appliance.db, appliance.device_id, signer),
                                   headers={"Content-Type": POLL_CONTENT_TYPE})
        except httpx.HTTPError as exc:
            log.warning("downlink poll failed: %s", exc)
            raise LinkError("无法从县平台接收消息，下次联网时会再试", f"cannot fetch the hub's messages ({exc}); will try next time") from exc
        result.bytes_received += len(response.content)
        if response.status_code in (204, 404):  # nothing waits (404: a hub without messages for devices)
            break
        if response.status_code != 200:
            raise _refusal(response)
        answer = open_answer(response.content, hub_key, appliance.device_id, appliance.school_code)
        applied = apply_answer(appliance, answer)
        result.downlink.add(applied)
        done = done or bool(applied.applied or applied.failed)
        if not answer["more"]:
            break
    return done


def build_next_batch(appliance: Appliance, after_seq: int | None = None, prev_hash: str | None = None,
                     max_events: int = BATCH_MAX_EVENTS) -> SignedBatch | None:
    """The next signed batch (events after ``after_seq``, default: the acknowledged ones), or None.

    Sends nothing: HTTP upload and a USB export share it.
    """
    if after_seq is None:
        after_seq = appliance.journal.acknowledged()
    if prev_hash is None:
        prev_hash = chain_hash(appliance, after_seq)
    events = appliance.journal.pending(after_seq, max_events)
    if not events:
        return None
    payload = encode_batch(events, appliance.device_id, appliance.school_code, prev_hash)
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    return SignedBatch(seal(BATCH_KIND, payload, signer), batch_hash(payload), events[0].seq, events[-1].seq, prev_hash)


def verify_ack(body: bytes, hub_key, device_id: str, batch: SignedBatch) -> UsageAck:
    """Check a hub acknowledgement for ``batch``: signature, device, batch hash, range."""
    try:
        ack = open_ack(body, hub_key)
    except FormatError as exc:
        raise LinkError("县平台的回复不是有效的确认，未做任何更改", f"hub answered something that is not an acknowledgement: {exc.en}") from exc
    except SignatureError as exc:
        raise SignatureError("确认的签名无效（不是县平台的密钥），未做任何更改",
                             f"acknowledgement is not signed by the hub's online key; nothing changed ({exc.en})") from exc
    if ack.device_id != device_id or ack.batch_hash != batch.hash:
        raise ReplayError("收到的确认不是针对这批数据的（可能是重放），未做任何更改",
                          "acknowledgement is for another device or batch (a replay?); nothing changed")
    if not 0 <= ack.acked_seq <= batch.last_seq:
        raise ReplayError("确认的序号超出了发送的范围，未做任何更改", "acknowledged sequence is outside what was sent; nothing changed")
    return ack


def apply_ack(appliance: Appliance, ack: UsageAck) -> int:
    """Record a verified acknowledgement: prune, keep the chain, raise the trusted clock. Returns rows pruned."""
    db = appliance.db
    with transaction(db):
        pruned = 0
        if ack.acked_seq > appliance.journal.acknowledged():
            pruned = appliance.journal.prune_acknowledged(ack.acked_seq)
            _set_chain(db, chain_seq=ack.acked_seq, chain_hash=ack.chain_hash)
        elif ack.acked_seq == appliance.journal.acknowledged():
            _set_chain(db, chain_seq=ack.acked_seq, chain_hash=ack.chain_hash)
        _set_chain(db, last_sent_hash=ack.batch_hash)
    appliance.clock.prove_timestamp(ack.hub_time)  # signed by the hub: a time this device may trust
    return pruned


def _send(client: httpx.Client, hub_url: str, batch: SignedBatch, appliance: Appliance, hub_key, result: UploadResult) -> UsageAck:
    url = hub_url + USAGE_PATH + f"?downlink_after={downlink_cursor(appliance.db)}"
    try:
        response = client.post(url, content=batch.envelope, headers={"Content-Type": BATCH_CONTENT_TYPE})
    except httpx.TimeoutException as exc:
        log.warning("usage upload of %d-%d timed out: %s", batch.first_seq, batch.last_seq, exc)
        raise LinkError("连接县平台超时，下次联网时会重发", f"hub timed out ({type(exc).__name__}); will resend next time") from exc
    except httpx.HTTPError as exc:
        log.warning("usage upload of %d-%d failed: %s", batch.first_seq, batch.last_seq, exc)
        raise LinkError("无法连接县平台，下次联网时会重发", f"cannot reach the hub ({exc}); will resend next time") from exc
    result.bytes_sent += len(batch.envelope)
    result.bytes_received += len(response.content)
    if response.status_code != 200:
        raise _refusal(response)
    try:
        return verify_ack(response.content, hub_key, appliance.device_id, batch)
    except SyncError as exc:
        log.warning("usage acknowledgement refused: %s", exc)
        raise


def _refusal(response: httpx.Response) -> SyncError:
    """The hub's JSON error as the matching exception (garbage becomes LinkError)."""
    try:
        err = response.json()["error"]
        zh, en, code = str(err["message"]), str(err["message_en"]), str(err["code"])
    except (ValueError, KeyError, TypeError):
        log.warning("hub answered HTTP %d with garbage", response.status_code)
        return LinkError("县平台返回了无法识别的回复", f"hub answered HTTP {response.status_code} with an unreadable body")
    kind = {"device": DeviceError, "bad_signature": SignatureError, "replay": ReplayError, "bad_format": FormatError}.get(code, LinkError)
    log.warning("hub refused usage batch (HTTP %d): %s", response.status_code, en)
    return kind(f"县平台拒收：{zh}", f"hub refused the batch: {en}")


def chain_hash(appliance: Appliance, after_seq: int) -> str:
    """The hash of the acknowledged batch ending at ``after_seq`` ('' at the start)."""
    values = dict(appliance.db.execute("select key, value from usage_chain").fetchall())
    if after_seq and values.get("chain_seq") == str(after_seq):
        return values.get("chain_hash", "")
    return ""


def _set_chain(db: sqlite_utils.Database, **values) -> None:
    for key, value in values.items():
        db.execute("insert or replace into usage_chain (key, value) values (?, ?)", [key, str(value)])
