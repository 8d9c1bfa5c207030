"""The county-to-province relay (relay_outbox, relay_push at the county; counties, relay_intake
at the province). A hub can be both: a county relaying up and, one level higher, a province."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, LargeBinary, MetaData, Table, Text

from hub_sync.hub.schema._types import Id


def define(metadata: MetaData) -> None:
    """Add the relay tables to ``metadata``."""
    # county: each usage envelope that stored something new, as the device signed it, in arrival order
    Table(
        "relay_outbox", metadata,
        Column("seq", Id, primary_key=True, autoincrement=True),
        Column("device_id", Text, nullable=False),
        Column("envelope", LargeBinary, nullable=False),
        Column("received_at", Double, nullable=False),
        sqlite_autoincrement=True,
    )
    # county: every bundle built, kept byte for byte until the province's receipt (a resend is the same bytes)
    Table(
        "relay_sent", metadata,
        Column("relay_seq", BigInteger, primary_key=True, autoincrement=False),
        Column("first_outbox", BigInteger, nullable=False),
        Column("last_outbox", BigInteger, nullable=False),
        Column("batches", BigInteger, nullable=False),
        Column("bundle", LargeBinary, nullable=False),
        Column("created_at", Double, nullable=False),
        Column("receipt", LargeBinary),
        Column("accepted", BigInteger),
        Column("refused", Text),  # JSON list of the receipt's refusal lines
        Column("acked_at", Double),
    )
    # province: the counties that relay here, their relay keys and cursors
    Table(
        "relay_counties", metadata,
        Column("county", Text, primary_key=True),
        Column("name", Text, nullable=False),
        Column("public_key", Text, nullable=False),
        Column("status", Text, nullable=False),  # active / revoked
        Column("added_at", Double, nullable=False),
        Column("revoked_at", Double),
        Column("relay_cursor", BigInteger, nullable=False, server_default="0"),
        Column("roster_at", Double, nullable=False, server_default="0"),  # issued_at of the newest roster taken
        Column("last_relay_at", Double),
    )
    # province: each bundle's outcome under (county, relay_seq): a resend gets the same receipt
    Table(
        "relay_bundles", metadata,
        Column("county", Text, primary_key=True),
        Column("relay_seq", BigInteger, primary_key=True, autoincrement=False),
        Column("bundle_hash", Text, nullable=False),
        Column("accepted", BigInteger, nullable=False),
        Column("refused", BigInteger, nullable=False),
        Column("summary", Text, nullable=False),
        Column("receipt", LargeBinary, nullable=False),
        Column("received_at", Double, nullable=False),
    )
