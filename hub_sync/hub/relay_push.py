"""The county's side of the relay: its device roster and bundles of its schools' usage
batches up to the province, resumable and exactly once there.

A pass (``hub relay push``, or the job ``relay_job`` of ``hub serve`` every
``relay_interval_min`` minutes, nothing while ``province_url`` is unset):

1. the device roster, signed by the county's relay key, every pass (a device revoked
   since the last pass is revoked at the province before any more of its batches go);
2. the bundle built and not yet acknowledged, if any, byte for byte as before; then
   new bundles of the outbox (``relay_outbox``), each at most ``relay_bundle_kb``;
3. a bundle is done only on a receipt that verifies against the province's relay key
   (``hub relay trust``) and names this county, this bundle number and this bundle's
   hash; anything else (the link cut mid-transfer, a timeout, a 5xx) leaves it to be
   sent again, after ``relay_attempts`` tries with exponential backoff (``tenacity``).

The province keeps each bundle's receipt under its number, so a bundle that arrived but
whose receipt was lost is answered the same way again: nothing is counted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

import httpx
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt, stop_when_event_set, wait_exponential

from hub_sync.core.errors import Problem, SyncError
from hub_sync.core.tls import client_tls
from hub_sync.formats.envelope import open_envelope, seal
from hub_sync.formats.relay_bundle import (BUNDLE_CONTENT_TYPE, BUNDLE_KIND, RECEIPT_KIND, ROSTER_CONTENT_TYPE, ROSTER_KIND,
                                           Bundle, Roster, RosterDevice, decode_receipt, encode_bundle, encode_roster,
                                           envelope_hash)
from hub_sync.formats.usage_batch import decode_batch
from hub_sync.hub.pass_lock import PassLock
from hub_sync.hub.database import Database
from hub_sync.hub.hub_settings import HubSettings
from hub_sync.hub.ingest import peek_payload
from hub_sync.hub.relay_keys import province_key, relay_signer
from hub_sync.hub.relay_outbox import RelayOutbox, SentBundle, roster_devices
from hub_sync.hub.rollup import DAY_MS, UTC_OFFSET_S, day_date

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
BACKOFF_S = 1.0
BACKOFF_MAX_S = 120.0
STOP_BUDGET_S = 3.0
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class RelayError(SyncError):
    """The province did not take a bundle (unreachable, refused, or an unverifiable receipt)."""

    code = "relay_failed"
    http_status = 502


class _Transient(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class HubFolder(Protocol):
    data_dir: Path

    @property
    def db(self) -> Database: ...


@dataclass
class PushResult:
    bundles: int = 0
    accepted: int = 0
    refused: list[str] = field(default_factory=list)
    roster: dict = field(default_factory=dict)


class RelayPush:
    """The relay of one opened county hub to its province."""

    def __init__(self, hub: HubFolder, stop: threading.Event | None = None) -> None:
        self.hub = hub
        self.stop = stop or threading.Event()
        self.outbox = RelayOutbox(hub.db)
        self.settings = HubSettings(hub.db)

    def roster(self) -> bytes:
        """The county's device roster, signed by its relay key."""
        devices = [RosterDevice(d["device_id"], d["school_code"], d["school_name"] or "", d["public_key"], d["status"],
                                d["enrolled_at"], d["revoked_at"]) for d in roster_devices(self.hub.db)]
        return seal(ROSTER_KIND, encode_roster(Roster(self._county(), time.time(), devices)), relay_signer(self.hub.data_dir))

    def next_bundle(self) -> SentBundle | None:
        """The bundle to send now: the unacknowledged one, else a new one of the outbox, else None."""
        pending = self.outbox.unacked()
        if pending is not None:
            return pending
        rows = self.outbox.next_rows(self.settings.get("relay_bundle_kb") * 1024)
        if not rows:
            return None
        envelopes = [e for _, _, e, _ in rows]
        seq = self.outbox.next_relay_seq()
        bundle = Bundle(self._county(), seq, (rows[0][0], rows[-1][0]), envelopes, summary(envelopes),
                        [at for *_, at in rows])
        signed = seal(BUNDLE_KIND, encode_bundle(bundle), relay_signer(self.hub.data_dir))
        return self.outbox.record(seq, rows[0][0], rows[-1][0], len(rows), signed)

    def push(self, progress: Callable[[PushResult], None] | None = None) -> PushResult:
        """One pass: the roster, then every bundle until the outbox is empty. RelayError when the
        province cannot be reached or refuses; what was acknowledged stays acknowledged."""
        url = self.settings.get("province_url")
        if not url:
            raise RelayError("未设置省级平台地址：请运行 school-edge hub config set province_url URL",
                             "no province set: run 'school-edge hub config set province_url URL' first")
        trusted = province_key(self.hub.data_dir)
        result = PushResult()
        with PassLock(self.hub, "province-relay", RelayError("另一个向省转发正在进行，请稍后再试", "another relay pass to the province is running; try again later")), httpx.Client(
                base_url=url, verify=client_tls(), timeout=httpx.Timeout(self.settings.get("relay_timeout_s"), connect=CONNECT_TIMEOUT_S)) as http:
            result.roster = self._post(http, "api/v1/province/roster", self.roster(), ROSTER_CONTENT_TYPE).json()
            for line in result.roster.get("refused", []):
                log.warning("province refused a roster entry: %s", line)
            while not self.stop.is_set():
                sent = self.next_bundle()
                if sent is None:
                    break
                answer = self._post(http, "api/v1/province/relay", sent.bundle, BUNDLE_CONTENT_TYPE)
                receipt = self._verify(answer.content, sent, trusted)
                lines = [r.line() for r in receipt.refused]
                self.outbox.acknowledge(sent.relay_seq, answer.content, receipt.accepted, lines)
                for line in lines:
                    log.warning("province refused bundle %d batch %s", sent.relay_seq, line)
                result.bundles += 1
                result.accepted += receipt.accepted
                result.refused += lines
                if progress:
                    progress(result)
        return result

    def _verify(self, body: bytes, sent: SentBundle, trusted):
        try:
            payload, _ = open_envelope(body, RECEIPT_KIND, [trusted])
            receipt = decode_receipt(payload)
        except Problem as exc:
            raise RelayError(f"省级平台的回执无法验证：{exc.zh}；转发包 {sent.relay_seq} 下次重发",
                             f"the province's receipt does not verify: {exc.en}; bundle {sent.relay_seq} will be sent again"
                             ) from None
        if (receipt.county, receipt.relay_seq, receipt.bundle_hash) != (self._county(), sent.relay_seq,
                                                                        envelope_hash(sent.bundle)):
            raise RelayError(f"省级平台的回执与转发包 {sent.relay_seq} 不符；下次重发",
                             f"the province's receipt does not answer bundle {sent.relay_seq}; it will be sent again")
        return receipt

    def _post(self, http: httpx.Client, path: str, body: bytes, ctype: str) -> httpx.Response:
        retrying = Retrying(stop=stop_after_attempt(self.settings.get("relay_attempts")) | stop_when_event_set(self.stop),
                            wait=wait_exponential(multiplier=BACKOFF_S, max=BACKOFF_MAX_S),
                            retry=retry_if_exception_type(_Transient), sleep=self.stop.wait,
                            before_sleep=before_sleep_log(log, logging.WARNING), reraise=True)
        try:
            return retrying(_send, http, path, body, ctype)
        except _Transient as exc:
            raise RelayError(f"省级平台暂时无法接收：{exc.why}；未确认的转发包下次重发",
                             f"the province did not answer: {exc.why}; what it did not acknowledge is sent next time"
                             ) from None

    def _county(self) -> str:
        code = self.settings.get("county_code")
        if not code:
            raise RelayError("未设置本县代码：请运行 school-edge hub config set county_code 代码",
                             "no county code set: run 'school-edge hub config set county_code CODE' first")
        return code


def _send(http: httpx.Client, path: str, body: bytes, ctype: str) -> httpx.Response:
    try:
        r = http.post(path, content=body, headers={"Content-Type": ctype})
    except httpx.TransportError as exc:  # refused, cut mid-transfer, timed out
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    if r.status_code in TRANSIENT_STATUS:
        raise _Transient(f"HTTP {r.status_code}")
    if r.status_code != 200:
        try:
            err = r.json()["error"]
            zh, en = err["message"], err["message_en"]
        except (ValueError, KeyError, TypeError):
            zh = en = f"HTTP {r.status_code}"
        raise RelayError(f"省级平台拒收：{zh}", f"the province refused: {en}")
    return r


def summary(envelopes: list[bytes]) -> dict[str, dict[str, int]]:
    """Events per school per county day of the batches (the bundle's roll-up summary)."""
    out: dict[str, Counter[int]] = defaultdict(Counter)
    off = UTC_OFFSET_S * 1000
    for envelope in envelopes:
        batch = decode_batch(peek_payload(envelope))
        # C iterators over the timestamps (as the roll-ups count them): no Python per event
        out[batch.header.school_code].update(map(DAY_MS.__rfloordiv__, map(off.__add__, batch.ts_ms)))
    return {school: {day_date(d).isoformat(): n for d, n in sorted(days.items())} for school, days in out.items()}


def relay_job(hub: HubFolder) -> Callable[[], None]:
    """A background job of ``hub serve``: a pass every ``relay_interval_min`` minutes while
    ``province_url`` is set; returns the function that stops it."""
    from apscheduler.schedulers.background import BackgroundScheduler

    stop = threading.Event()
    interval_min = HubSettings(hub.db).get("relay_interval_min")

    def tick() -> None:
        if not HubSettings(hub.db).get("province_url"):
            return
        try:
            result = RelayPush(hub, stop).push()
            if result.bundles:
                log.info("province relay: %d bundle(s), %d batch(es) accepted, %d refused", result.bundles,
                         result.accepted, len(result.refused))
        except Problem as exc:
            log.warning("province relay: %s", exc.en)
        except Exception:  # a background job must never die: log and try at the next interval
            log.exception("province relay failed")

    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(tick, "interval", minutes=interval_min, id="province-relay", max_instances=1, coalesce=True,
                      next_run_time=datetime.now() + timedelta(seconds=60))
    scheduler.start()

    def stop_job() -> None:
        stop.set()
        stopper = threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, name="stop-province-relay", daemon=True)
        stopper.start()
        stopper.join(STOP_BUDGET_S)

    return stop_job

