"""The county's relay outbox: usage envelopes as the devices signed them, and the bundles
built from them until the province's receipt (all SQL of the county side of the relay).

``keep`` runs inside the transaction that stores a batch (``usage_api``), and only when
the batch stored something new: the envelope is in the outbox exactly when its events
are in the county's tables, until the province's receipt for its bundle. Bundles are numbered 1, 2, 3 ...; a bundle is kept byte
for byte (``relay_sent``) until a verified receipt marks it acknowledged, so a pass cut
anywhere sends the very same bytes again and the province answers them the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from hub_sync.hub.database import Database, transaction


def keep(db: Database, device_id: str, envelope: bytes) -> None:
    """Add a stored batch's envelope to the outbox (call inside the batch's transaction)."""
    db.execute("insert into relay_outbox (device_id, envelope, received_at) values (:device, :envelope, :now)",
               {"device": device_id, "envelope": envelope, "now": time.time()})


@dataclass(frozen=True)
class SentBundle:
    relay_seq: int
    first_outbox: int
    last_outbox: int
    batches: int
    bundle: bytes


@dataclass(frozen=True)
class OutboxStatus:
    waiting_batches: int
    bundles_sent: int
    bundles_acked: int
    unacked_relay_seq: int | None
    accepted_total: int
    last_acked_at: float | None
    refusals: list[str]


class RelayOutbox:
    """The outbox and the bundles of one county hub."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def unacked(self) -> SentBundle | None:
        """The bundle built and not yet acknowledged (sent again before anything new)."""
        row = self.db.execute("select relay_seq, first_outbox, last_outbox, batches, bundle from relay_sent"
                              " where acked_at is null order by relay_seq limit 1").fetchone()
        return SentBundle(row[0], row[1], row[2], row[3], bytes(row[4])) if row else None

    def next_rows(self, max_bytes: int) -> list[tuple[int, str, bytes, float]]:
        """(outbox seq, device, envelope, stored at) after the last bundle built, in order, up to
        ``max_bytes`` of envelopes (at least one, however large)."""
        after = self.db.scalar("select coalesce(max(last_outbox), 0) from relay_sent") or 0
        out, size = [], 0
        for seq, device_id, envelope, received_at in self.db.execute(
                "select seq, device_id, envelope, received_at from relay_outbox where seq > :after order by seq limit 2000",
                {"after": int(after)}):
            envelope = bytes(envelope)
            if out and size + len(envelope) > max_bytes:
                break
            out.append((seq, device_id, envelope, float(received_at)))
            size += len(envelope)
        return out

    def next_relay_seq(self) -> int:
        return int(self.db.scalar("select coalesce(max(relay_seq), 0) from relay_sent") or 0) + 1

    def record(self, relay_seq: int, first: int, last: int, batches: int, bundle: bytes) -> SentBundle:
        """Keep a newly built bundle (before it is sent: a resend must be the same bytes)."""
        with transaction(self.db):
            self.db.execute("insert into relay_sent (relay_seq, first_outbox, last_outbox, batches, bundle, created_at)"
                            " values (:seq, :first, :last, :n, :bundle, :now)",
                            {"seq": relay_seq, "first": first, "last": last, "n": batches, "bundle": bundle,
                             "now": time.time()})
        return SentBundle(relay_seq, first, last, batches, bundle)

    def acknowledge(self, relay_seq: int, receipt: bytes, accepted: int, refusals: list[str]) -> None:
        """The province's verified receipt for bundle ``relay_seq``: it is done. Its envelopes leave
        the outbox and its bytes are dropped (the events stay in the county's tables; the
        province holds them now), the receipt is kept."""
        with transaction(self.db):
            row = self.db.execute("select last_outbox from relay_sent where relay_seq = :seq and acked_at is null",
                                  {"seq": relay_seq}).fetchone()
            if row is None:
                return
            self.db.execute("update relay_sent set receipt = :receipt, accepted = :accepted, refused = :refused,"
                            " acked_at = :now, bundle = :empty where relay_seq = :seq",
                            {"receipt": receipt, "accepted": accepted, "refused": json.dumps(refusals, ensure_ascii=False),
                             "now": time.time(), "seq": relay_seq, "empty": b""})
            self.db.execute("delete from relay_outbox where seq <= :last", {"last": row[0]})

    def status(self) -> OutboxStatus:
        """What is waiting and what the province answered so far."""
        acked_upto = self.db.scalar("select coalesce(max(last_outbox), 0) from relay_sent where acked_at is not null") or 0
        waiting = self.db.scalar("select count(*) from relay_outbox where seq > :after", {"after": int(acked_upto)})
        sent, acked, accepted, last = self.db.execute(
            "select count(*), count(acked_at), coalesce(sum(accepted), 0), max(acked_at) from relay_sent").fetchone()
        unacked = self.unacked()
        refusals: list[str] = []
        for (refused,) in self.db.execute("select refused from relay_sent where refused is not null and refused != '[]'"
                                          " order by relay_seq"):
            refusals += json.loads(refused)
        return OutboxStatus(int(waiting), int(sent), int(acked), unacked.relay_seq if unacked else None, int(accepted),
                            last, refusals)


def roster_devices(db: Database) -> list[dict]:
    """Every device of the county's registry with its public key (the device roster's rows)."""
    return [dict(r) | {"public_key": json.loads(r["public_key"])} for r in db.query(
        "select device_id, school_code, school_name, public_key, status, enrolled_at, revoked_at from devices"
        " order by device_id")]
