"""The province's side of the relay: a county's device roster and usage bundles in, signed
receipts out.

A bundle is taken in only if the county is registered and active and the bundle verifies
against the county's relay key (otherwise it is refused whole, nothing changed). Then
each device envelope in it, untouched since the device signed it, goes through the same
``UsageIngest`` a county runs, against the device key the county's roster registered:
chains, gaps and exactly-once hold as at the county. A batch of a device the county
never registered (or has revoked) is refused on its own, with one line in the receipt
and the log; the rest of the bundle is taken.

Each bundle's outcome is kept under (county, relay_seq) with its receipt: the same
bundle again (a cut mid-transfer, the county retrying, a county replaying an old one)
gets the very same receipt, marked "already received", and changes nothing; other
content under a number already taken, or a number beyond the next one, is refused.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from securesystemslib.signer import Signer

from hub_sync.core.errors import FormatError, Problem, ReplayError, SignatureError
from hub_sync.formats.envelope import open_envelope, seal
from hub_sync.formats.relay_bundle import (BUNDLE_KIND, RECEIPT_KIND, ROSTER_KIND, Receipt, Refusal, decode_bundle,
                                           decode_roster, encode_receipt, envelope_hash, peek_county)
from hub_sync.formats.usage_batch import read_header
from hub_sync.hub.counties import Counties, County, CountyRefused
from hub_sync.hub.database import Database
from hub_sync.hub.ingest import UsageIngest, peek_payload

log = logging.getLogger(__name__)

# devices of one bundle ingested at once (their batches wait on the database about half the time)
INTAKE_THREADS = 4


class RelayIntake:
    """What one province hub takes in from its counties."""

    def __init__(self, db: Database, signer: Signer) -> None:
        self.db = db
        self.signer = signer
        self.counties = Counties(db)

    def roster(self, envelope: bytes) -> dict:
        """Take a county's signed device roster; returns {added, revoked, refused: [lines]}."""
        county, payload = self._open(envelope, ROSTER_KIND, "设备名单", "device roster")
        roster = decode_roster(payload)
        if roster.county != county.code:
            raise FormatError("设备名单中的县代码与签名的县不一致", "the roster names another county than the one that signed it")
        added, revoked, refused = self.counties.take_roster(county, roster)
        for line in refused:
            log.warning("roster of county %s: refused %s", county.code, line)
        log.info("roster of county %s: %d device(s) added, %d revoked", county.code, added, revoked)
        return {"added": added, "revoked": revoked, "refused": refused}

    def bundle(self, envelope: bytes) -> tuple[bytes, bool]:
        """Take a county's signed bundle; returns (the province-signed receipt, already received)."""
        county, payload = self._open(envelope, BUNDLE_KIND, "转发包", "relay bundle")
        bundle = decode_bundle(payload)
        if bundle.county != county.code:
            raise FormatError("转发包中的县代码与签名的县不一致", "the bundle names another county than the one that signed it")
        digest = envelope_hash(envelope)
        held = self.counties.outcome(county.code, bundle.relay_seq)
        if held is not None:
            if held.bundle_hash != digest:
                raise ReplayError(f"县 {county.code} 的转发包 {bundle.relay_seq} 已收到过，内容不同，拒收",
                                  f"county {county.code} bundle {bundle.relay_seq} was received before with other content;"
                                  " refused, nothing changed")
            log.warning("county %s bundle %d already received; nothing changed (same receipt sent again)",
                        county.code, bundle.relay_seq)
            return held.receipt, True
        if bundle.relay_seq > county.relay_cursor + 1:
            raise ReplayError(f"县 {county.code} 的转发包 {bundle.relay_seq} 跳号：应先收到 {county.relay_cursor + 1}",
                              f"county {county.code} bundle {bundle.relay_seq} skips ahead: expected "
                              f"{county.relay_cursor + 1}; refused, nothing changed")
        _check_summary(bundle)
        outcomes = self._all(county, bundle.envelopes, bundle.received)
        accepted, refused = sum(r is None for r in outcomes), [r for r in outcomes if r is not None]
        for refusal in refused:
            log.warning("county %s bundle %d: refused %s", county.code, bundle.relay_seq, refusal.line())
        receipt = seal(RECEIPT_KIND, encode_receipt(Receipt(county.code, bundle.relay_seq, digest, accepted, refused,
                                                            time.time())), self.signer)
        outcome = self.counties.record(county.code, bundle.relay_seq, digest, accepted, len(refused), bundle.summary, receipt)
        log.info("county %s bundle %d: %d batch(es) accepted, %d refused", county.code, bundle.relay_seq, accepted, len(refused))
        return outcome.receipt, outcome.receipt != receipt

    def _open(self, envelope: bytes, kind: str, what_zh: str, what_en: str) -> tuple[County, bytes]:
        county = self.counties.active(peek_county(envelope))
        try:
            payload, _ = open_envelope(envelope, kind, [county.public_key])
        except SignatureError:
            raise CountyRefused(f"{what_zh}不是用县 {county.code} 登记的中继密钥签名的，整包拒收",
                                f"{what_en} is not signed by county {county.code}'s registered relay key; refused whole"
                                ) from None
        return county, payload

    def _all(self, county: County, envelopes: list[bytes], received: list[float] | None) -> list[Refusal | None]:
        """Ingest a bundle's envelopes, each device's in order, several devices at once (each
        batch is a transaction of its own and spends much of its time waiting for the database);
        the outcomes in the bundle's order."""
        by_device: dict[str, list[int]] = defaultdict(list)
        for i, env in enumerate(envelopes):
            try:
                by_device[read_header(peek_payload(env)).device_id].append(i)
            except FormatError:
                by_device[f"?{i}"].append(i)  # refused by _one, on its own
        outcomes: list[Refusal | None] = [None] * len(envelopes)

        def device(indexes: list[int]) -> None:
            for i in indexes:
                outcomes[i] = self._one(county, envelopes[i], received[i] if received else None)

        with ThreadPoolExecutor(INTAKE_THREADS, thread_name_prefix="relay-intake") as pool:
            list(pool.map(device, by_device.values()))
        return outcomes

    def _one(self, county: County, envelope: bytes, received_at: float | None) -> Refusal | None:
        """Ingest one device envelope of ``county``'s bundle (stored there at ``received_at``, None
        if the bundle does not say); the refusal, or None when taken."""
        try:
            header = read_header(peek_payload(envelope))
        except FormatError as exc:
            return Refusal("?", 0, 0, exc.zh, exc.en)
        where = (header.device_id, header.first_seq, header.last_seq)
        held = self.counties.device_county(header.device_id)
        if held is None or held[0] != county.code:
            return Refusal(*where, f"设备 {header.device_id} 不在县 {county.code} 登记的设备名单中，拒收",
                           f"device {header.device_id} was never registered by county {county.code}; batch refused")
        revoked_at = held[1]
        # what the county stored before it revoked the device is usage like any other (the county
        # counts it too); only what it says it stored later, or cannot say when, is refused
        if revoked_at is not None and (received_at is None or received_at >= revoked_at):
            return Refusal(*where, f"设备 {header.device_id} 已被县 {county.code} 吊销，拒收",
                           f"device {header.device_id} was revoked by county {county.code}; batch refused")
        try:
            ack = UsageIngest(self.db).ingest(envelope, revoked_ok=revoked_at is not None)
        except Problem as exc:
            return Refusal(*where, exc.zh, exc.en)
        if ack.resend_from is not None:
            return Refusal(*where, f"缺少之前的数据：省级平台只有到 {ack.acked_seq} 的记录",
                           f"a gap: the province holds this device's events up to {ack.acked_seq} only")
        return None


def _check_summary(bundle) -> None:
    """The roll-up summary must count the events the batches' headers announce, school by school."""
    announced: dict[str, int] = defaultdict(int)
    for env in bundle.envelopes:
        try:
            header = read_header(peek_payload(env))
        except FormatError:
            continue
        announced[header.school_code] += header.count
    summed = {school: sum(days.values()) for school, days in bundle.summary.items()}
    if summed != dict(announced):
        raise FormatError("转发包的汇总与其中的使用数据不符，整包拒收",
                          "the bundle's roll-up summary does not match its batches; refused whole")
