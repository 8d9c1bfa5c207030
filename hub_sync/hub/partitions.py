"""Monthly partitions of ``usage_events`` on PostgreSQL (a no-op on SQLite).

``usage_events`` is partitioned by ``month``, the yyyymm of ``received_at`` in UTC+8 (the
county's calendar month, so a month's partition can later be detached or archived
whole). There is no DEFAULT partition: the ingest code calls ``ensure_month_partitions``
for the month it is about to write before inserting, so a row never has nowhere to go.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import Connection

# the county's clock: months are counted in China Standard Time
COUNTY_TZ = timezone(timedelta(hours=8))


def month_of(ts: float) -> int:
    """The ``month`` column for a ``received_at`` in seconds: yyyymm in UTC+8 (e.g. 202611)."""
    d = datetime.fromtimestamp(ts, COUNTY_TZ)
    return d.year * 100 + d.month


def next_month(month: int) -> int:
    """The yyyymm after ``month`` (202612 -> 202701)."""
    year, m = divmod(month, 100)
    return (year + 1) * 100 + 1 if m == 12 else month + 1


def partition_name(month: int) -> str:
    """The partition table holding ``month``: ``usage_events_202611``."""
    return f"usage_events_{month:06d}"


def ensure_month_partitions(conn: Connection, months: Iterable[int]) -> None:
    """Create the ``usage_events`` partitions of ``months`` (yyyymm) that do not exist yet.

    PostgreSQL only; on SQLite ``usage_events`` is one table and this does nothing. Two
    processes may race to create the same partition: call it under the ingest's advisory
    lock (``db.lock``), or be ready to retry the transaction.
    """
    if conn.dialect.name != "postgresql":
        return
    for month in sorted(set(months)):
        month = int(month)  # interpolated into DDL (no bind parameters there): an int, nothing else
        if not 100001 <= month <= 999912 or not 1 <= month % 100 <= 12:
            raise ValueError(f"not a yyyymm month: {month}")
        conn.exec_driver_sql(f"create table if not exists {partition_name(month)} partition of usage_events"
                             f" for values from ({month}) to ({next_month(month)})")
