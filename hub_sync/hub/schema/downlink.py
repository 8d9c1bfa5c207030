"""Messages down to the schools and transfers between them (downlink)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, MetaData, Table, Text


def define(metadata: MetaData) -> None:
    """Add the downlink tables to ``metadata``."""
    Table(
        "downlink_messages", metadata,
        Column("school_code", Text, primary_key=True),
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("kind", Text, nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", Double, nullable=False),
        sqlite_with_rowid=False,
    )
    Table(
        "downlink_scan", metadata,
        Column("device_id", Text, primary_key=True),
        Column("scanned_seq", BigInteger, nullable=False),
    )
    Table(
        "downlink_reported", metadata,
        Column("device_id", Text, primary_key=True),
        Column("applied_seq", BigInteger, nullable=False),
        Column("at", Double, nullable=False),
    )
    Table(
        "transfers", metadata,
        Column("transfer_id", Text, primary_key=True),
        Column("number", Text, nullable=False),
        Column("from_school", Text, nullable=False),
        Column("to_school", Text, nullable=False),
        Column("to_class", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("received_at", Double),
        Column("delivered_seq", BigInteger),
    )
