"""Cursors of the readers of ``usage_events``: how far each has looked at a device's events.

``downlink_scan`` (``Downlink.scan``: shares, transfers, applied downlink messages) and
``offer_scan`` (``Offers.collect``: teachers' offers) each keep, per device, the highest
sequence number they have read. A reader looks at the events above its cursor after the
request that stored them, in a transaction of its own, so an event it cannot use never
refuses the batch that brought it.

Most batches hold nothing either reader wants, and the batch says so up front: its table
of distinct strings has no verb or object they look for. For those, :func:`pass_over`
moves the cursor past the new events inside the batch's own transaction: the hub neither
reads 2,000 events back nor commits twice more per batch.
"""

from __future__ import annotations

from hub_sync.hub.database import Database

TABLES = frozenset({"downlink_scan", "offer_scan"})


def pass_over(db: Database, table: str, device_id: str, before: int, top: int) -> bool:
    """Move ``table``'s cursor of ``device_id`` to ``top`` if it stands at ``before`` or above
    (nothing older waits to be read); return whether it did. Call inside the transaction that
    stored the device's events ``before + 1`` .. ``top``, and only when none of them concerns
    the reader. A cursor never moves back (a reader that got further first keeps its place)."""
    if table not in TABLES:
        raise ValueError(f"not a scan cursor table: {table}")
    scanned = db.scalar(f"select scanned_seq from {table} where device_id = ?", [device_id]) or 0
    if scanned < before:
        return False
    db.execute(f"insert into {table} (device_id, scanned_seq) values (?, ?) on conflict (device_id) do update"
               f" set scanned_seq = excluded.scanned_seq where {table}.scanned_seq < excluded.scanned_seq",
               [device_id, top])
    return True
