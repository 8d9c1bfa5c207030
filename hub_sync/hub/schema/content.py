"""Channels, resources, teachers' offers and firmware (channels, usb_offers, offers, firmware_repo)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, MetaData, Table, Text, UniqueConstraint

from hub_sync.hub.schema._types import Id


def define(metadata: MetaData) -> None:
    """Add the content tables to ``metadata``."""
    Table(
        "channels", metadata,
        Column("id", Text, primary_key=True),
        Column("title", Text),
        Column("mandatory", BigInteger),  # 0/1
        Column("created_at", Double),
        Column("mirror", BigInteger, nullable=False, server_default="0"),  # 1: another hub signs it (channel_mirrors)
    )
    Table(
        "channel_mirrors", metadata,  # channels mirrored from another hub (a province's): hub_sync.hub.channel_mirrors
        Column("channel", Text, primary_key=True),
        Column("url", Text, nullable=False),  # the other hub's base URL
        Column("added_at", Double, nullable=False),
        Column("synced_at", Double),  # last sync that verified and stored everything
        Column("version", BigInteger),  # the channel role's version at that sync
        Column("error", Text, nullable=False, server_default=""),  # the last sync's refusal, if it failed
    )
    Table(
        "hub_resources", metadata,
        Column("id", Text, primary_key=True),
        Column("channel", Text),
        Column("meta", Text),
        Column("files", Text),
        Column("updated_at", Double),
        Index("idx_hub_resources_channel", "channel"),
    )
    Table(
        "subscriptions", metadata,
        Column("school_code", Text, primary_key=True),
        Column("channel", Text, primary_key=True),
        Column("at", Double),
    )
    Table(
        "provisionings", metadata,
        Column("token", Text, primary_key=True),
        Column("school_code", Text),
        Column("school_name", Text),
        Column("created_at", Double),
    )
    Table(
        "usb_offered_uploads", metadata,
        Column("device_id", Text, primary_key=True),
        Column("resource_id", Text, primary_key=True),
        Column("school_code", Text),
        Column("meta", Text),
        Column("received_at", Double),
    )
    Table(
        "offers", metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("device_id", Text, nullable=False),
        Column("school_code", Text, nullable=False),
        Column("resource_id", Text, nullable=False),  # the appliance's id of the teacher's resource
        Column("uploader", Text, nullable=False, server_default=""),
        Column("meta", Text, nullable=False),  # curriculum metadata (CURRICULUM), as offered or as edited
        Column("files", Text, nullable=False),  # [{path, sha256, size, mime}]
        Column("origin", Text, nullable=False),  # network | usb
        Column("state", Text, nullable=False, server_default="pending"),
        Column("channel", Text),  # approved into
        Column("published_id", Text),  # its id in the channel
        Column("reason", Text, nullable=False, server_default=""),
        Column("decided_by", Text),
        Column("decided_at", Double),
        Column("received_at", Double, nullable=False),
        UniqueConstraint("device_id", "resource_id", name="offers_device_resource"),
        Index("offers_state", "state", "received_at"),
        sqlite_autoincrement=True,
    )
    Table(
        "offer_scan", metadata,
        Column("device_id", Text, primary_key=True),
        Column("scanned_seq", BigInteger, nullable=False),
    )
    Table(
        "firmware_releases", metadata,
        Column("version", Text, primary_key=True),
        Column("manifest_sha256", Text),
        Column("size", BigInteger),
        Column("files", BigInteger),
        Column("downgrade", BigInteger),  # 0/1
        Column("published_at", Double),
    )
    Table(
        "firmware_rollout", metadata,  # one row, id 1
        Column("id", Id, primary_key=True, autoincrement=False),
        Column("rules", Text),
        Column("updated_at", Double),
    )
