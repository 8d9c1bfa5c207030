"""The appliances' health reports (fleet)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, MetaData, Table, Text


def _report_columns() -> list[Column]:
    """The columns of one health report, shared by the latest and the history."""
    return [
        Column("received_at", Double, nullable=False),
        Column("device_time", Double, nullable=False),
        Column("clock_offset_s", Double, nullable=False),
        Column("version", Text, nullable=False),
        Column("teaching_point", Text, nullable=False),
        Column("firmware", Text, nullable=False),
        Column("sync_attempt", Text, nullable=False),
        Column("sync_success", Text, nullable=False),
        Column("sync_error", Text, nullable=False),
        Column("disk_free_bytes", BigInteger, nullable=False),
        Column("corrupt_files", BigInteger, nullable=False),
        Column("pending_usage", BigInteger, nullable=False),
        Column("failed_messages", BigInteger, nullable=False),
    ]


def define(metadata: MetaData) -> None:
    """Add the fleet tables to ``metadata``."""
    Table(
        "fleet_devices", metadata,
        Column("device_id", Text, primary_key=True),
        Column("school_code", Text, nullable=False),
        Column("report_seq", BigInteger, nullable=False),
        *_report_columns(),
        Index("fleet_devices_point", "school_code", "teaching_point"),
    )
    Table(
        "fleet_history", metadata,
        Column("device_id", Text, primary_key=True),
        Column("report_seq", BigInteger, primary_key=True, autoincrement=False),
        *_report_columns(),
        sqlite_with_rowid=False,
    )
