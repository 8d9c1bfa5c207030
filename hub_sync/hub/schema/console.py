"""The county console: accounts, sessions, the audit log, settings (accounts, sessions, audit, hub_settings)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, MetaData, Table, Text, func, text

from hub_sync.hub.schema._types import Id

# SQLite compares account names case-insensitively by the column's collation; PostgreSQL has
# no NOCASE collation, so there a unique index on lower(name) refuses "Li" beside "li".
NameText = Text().with_variant(Text(collation="NOCASE"), "sqlite")


def define(metadata: MetaData) -> None:
    """Add the console tables to ``metadata``."""
    accounts = Table(
        "accounts", metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("name", NameText, nullable=False, unique=True),
        Column("role", Text, nullable=False),
        Column("school", Text),  # school_head only: the one school they see
        Column("password_hash", Text, nullable=False),
        Column("status", Text, nullable=False, server_default="active"),  # active | disabled
        Column("created_at", Double, nullable=False),
        Column("updated_at", Double, nullable=False),
        sqlite_autoincrement=True,
    )
    Index("accounts_name_lower", func.lower(accounts.c.name), unique=True,
          info={"dialect": "postgresql"}).ddl_if(dialect="postgresql")
    Table(
        "console_sessions", metadata,
        Column("token_hash", Text, primary_key=True),
        Column("account_id", BigInteger, nullable=False),
        Column("client", Text, nullable=False, server_default=""),
        Column("created_at", Double, nullable=False),
        Column("last_seen", Double, nullable=False),
        Column("expires_at", Double, nullable=False),
        Index("console_sessions_account", "account_id"),
    )
    Table(
        "login_failures", metadata,
        Column("key", Text, primary_key=True),  # acct:<id>, number:<n> or client:<address>
        Column("failures", BigInteger, nullable=False),
        Column("first_at", Double, nullable=False),
        Column("locked_until", Double, nullable=False, server_default=text("0")),
        Column("lock_level", BigInteger, nullable=False, server_default=text("0")),
        Column("locked_at", Double, nullable=False, server_default=text("0")),
        Column("wrong_total", BigInteger, nullable=False, server_default=text("0")),
    )
    # append-only: the baseline migration adds triggers refusing UPDATE and DELETE on both engines
    Table(
        "audit_log", metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("at", Double, nullable=False),
        Column("actor", Text, nullable=False),  # the console account's name (or cli:<user>)
        Column("action", Text, nullable=False),  # approved, rejected, withdrawn, metadata_edited, account_added ...
        Column("target", Text, nullable=False),  # offer:<id>, resource:<id>, account:<name>
        Column("reason", Text, nullable=False, server_default=""),
        Column("details", Text, nullable=False, server_default="{}"),
        Index("audit_target", "target"),
        sqlite_autoincrement=True,
    )
    Table(
        "hub_settings", metadata,
        Column("key", Text, primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", Double, nullable=False),
    )
