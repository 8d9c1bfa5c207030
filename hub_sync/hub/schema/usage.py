"""Devices, the usage they upload, and what is derived from it (registry, ingest, rollup, lrs_relay)."""

from __future__ import annotations

from sqlalchemy import (BigInteger, CheckConstraint, Column, Double, Index, LargeBinary, MetaData, Table, Text,
                        text)

from hub_sync.hub.schema._types import Id


def define(metadata: MetaData) -> None:
    """Add the usage tables to ``metadata``."""
    Table(
        "devices", metadata,
        Column("device_id", Text, primary_key=True),
        Column("school_code", Text, nullable=False),
        Column("school_name", Text),
        Column("public_key", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("enrolled_at", Double),
        Column("revoked_at", Double),
        Column("last_seen_at", Double),
        Column("downlink_start", BigInteger, nullable=False, server_default=text("0")),
        Column("county", Text),  # at a province: the county whose roster registered the device (relay_intake)
        Index("idx_devices_school_code", "school_code"),
    )
    Table(
        "enrollment_tokens", metadata,
        Column("token_hash", Text, primary_key=True),
        Column("school_code", Text, nullable=False),
        Column("school_name", Text, nullable=False, server_default=""),
        Column("created_at", Double, nullable=False),
        Column("expires_at", Double, nullable=False),
        Column("used_by", Text),
        Column("used_at", Double),
    )
    # Every usage event a device uploaded. On PostgreSQL partitioned by ``month`` (yyyymm of
    # received_at in UTC+8, filled by the ingest code; partitions made on demand by
    # hub_sync.hub.partitions), on SQLite a plain WITHOUT ROWID table. A partitioned table's
    # keys must contain the partition key, hence ``month`` in the primary key; it comes last
    # so the key still serves every reader's ``device_id = ? and seq > ?``. The key therefore
    # does NOT make an event unique across months: exactly-once is the ingest code's, which
    # only inserts seq above the device's cursor (device_usage_state.contiguous_seq) while it
    # holds that device's row lock.
    Table(
        "usage_events", metadata,
        Column("device_id", Text, primary_key=True),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("month", BigInteger, primary_key=True, autoincrement=False),
        Column("ts", Double, nullable=False),
        Column("actor", Text, nullable=False),
        Column("verb", Text, nullable=False),
        Column("object", Text, nullable=False),
        Column("data", Text, nullable=False),
        Column("received_at", Double, nullable=False),
        sqlite_with_rowid=False,
        postgresql_partition_by="RANGE (month)",
    )
    Table(
        "device_usage_state", metadata,
        Column("device_id", Text, primary_key=True),
        Column("contiguous_seq", BigInteger, nullable=False),
        Column("last_batch_hash", Text, nullable=False),
        Column("updated_at", Double, nullable=False),
    )
    Table(
        "usage_batches", metadata,
        Column("device_id", Text, primary_key=True),
        Column("batch_hash", Text, primary_key=True),
        Column("first_seq", BigInteger, nullable=False),
        Column("last_seq", BigInteger, nullable=False),
        Column("prev_hash", Text, nullable=False),
        Column("events", BigInteger, nullable=False),
        Column("received_at", Double, nullable=False),
        sqlite_with_rowid=False,
    )
    # roll-ups: learners and teachers are little-endian bitsets of rollup_people.idx (bits_or)
    Table(
        "rollup", metadata,
        Column("level", Text, primary_key=True),
        Column("start", BigInteger, primary_key=True, autoincrement=False),
        Column("dim", Text, primary_key=True),
        Column("device_id", Text, primary_key=True),
        Column("events", BigInteger, nullable=False),
        Column("assigned", BigInteger, nullable=False),
        Column("handed_in", BigInteger, nullable=False),
        Column("learners", LargeBinary, nullable=False),
        Column("teachers", LargeBinary, nullable=False),
        sqlite_with_rowid=False,
    )
    Table(
        "rollup_people", metadata,
        Column("device_id", Text, primary_key=True),
        Column("actor", Text, primary_key=True),
        Column("idx", BigInteger, nullable=False),
        Column("teacher", BigInteger, nullable=False),  # 0/1
        sqlite_with_rowid=False,
    )
    Table(
        "rollup_assignments", metadata,
        Column("device_id", Text, primary_key=True),
        Column("assignment", Text, primary_key=True),
        Column("resource", Text, nullable=False),
        sqlite_with_rowid=False,
    )
    Table(
        "rollup_changes", metadata,
        Column("scope", Text, primary_key=True),
        Column("day", BigInteger, primary_key=True, autoincrement=False),
        Column("changed_at", Double, nullable=False),
        sqlite_with_rowid=False,
    )
    Table(
        "lrs_cursor", metadata,
        Column("device_id", Text, primary_key=True),
        Column("relayed_seq", BigInteger, nullable=False),
        Column("updated_at", Double, nullable=False),
    )
    Table(
        "lrs_status", metadata,  # one row, id 1
        Column("id", Id, primary_key=True, autoincrement=False),
        Column("last_pass_at", Double),
        Column("last_ok_at", Double),
        Column("last_error", Text, nullable=False, server_default=""),
        Column("last_error_at", Double),
        Column("sent_total", BigInteger, nullable=False, server_default=text("0")),
        CheckConstraint("id = 1", name="lrs_status_one_row"),
    )
