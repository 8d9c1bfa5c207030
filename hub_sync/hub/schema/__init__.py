"""The hub database's schema: ONE SQLAlchemy ``MetaData`` for SQLite and PostgreSQL.

Alembic's migrations (``hub_sync/hub/alembic``) create it and a test compares them with
this definition. Table and column names are the ones the storage modules' SQL uses.

Portable types: text is ``Text``; timestamps are ``Double`` seconds (SQLite REAL,
PostgreSQL double precision); counters and flags are ``BigInteger`` (booleans are
0/1); bytes are ``LargeBinary`` (BLOB, bytea); an integer id key is ``_types.Id``.
``sqlite_with_rowid=False`` keeps the WITHOUT ROWID tables the hub had.

Each area module adds its tables to the one ``metadata`` here, explicitly.
"""

from __future__ import annotations

from sqlalchemy import MetaData

from hub_sync.hub.schema import console, content, downlink, fleet, live, relay, usage

__all__ = ["metadata"]

metadata = MetaData()
for _area in (usage, content, downlink, live, fleet, console, relay):
    _area.define(metadata)
