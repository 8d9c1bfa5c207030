"""Bringing a hub database to the current schema with Alembic (``hub_sync/hub/alembic``).

The hub opens its database itself and hands the SQLAlchemy connection over; no alembic.ini.
``adopt_legacy`` takes in a SQLite hub.db the old sqlite-utils migration sets made.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from hub_sync.core.errors import DataDirError
from hub_sync.hub.schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

ALEMBIC_DIR = Path(__file__).parent / "alembic"
# Alembic's INFO lines (plugins set up at its import, each step run) are not for a technician's
# terminal, where a command prints its result or one line of error; set before anything imports it
logging.getLogger("alembic").setLevel(logging.WARNING)
BASELINE = "0001"
# the newest revision (tests/test_hub_schema.py checks it is Alembic's head): a database already
# there is opened without loading Alembic at all, which every command and server start would pay
HEAD = "0002"
# the tables the old migration sets made, all of which the baseline revision reproduces
LEGACY_TABLES = frozenset({
    "devices", "enrollment_tokens", "channels", "hub_resources", "subscriptions", "provisionings",
    "usage_events", "device_usage_state", "usage_batches", "downlink_messages", "downlink_scan",
    "downlink_reported", "transfers", "usb_offered_uploads", "live_timetable", "live_messages", "live_polls",
    "live_teachers", "live_held", "rollup", "rollup_people", "rollup_assignments", "rollup_changes",
    "firmware_releases", "firmware_rollout", "fleet_devices", "fleet_history", "hub_settings", "lrs_cursor",
    "lrs_status", "console_sessions", "accounts", "login_failures", "audit_log", "offers", "offer_scan",
})


# usage_events' monthly partitions live outside the MetaData (hub_sync.hub.partitions)
_PARTITION = re.compile(r"usage_events_\d{6}$")


def object_filter(dialect: str):
    """Alembic's ``include_object`` for ``dialect``: what autogenerate compares. Not the
    partitions, nor another engine's objects (marked ``info={"dialect": ...}``, like
    accounts_name_lower, PostgreSQL's stand-in for SQLite's NOCASE collation)."""
    def include_object(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and name and _PARTITION.match(name):
            return False
        wanted = getattr(obj, "info", {}).get("dialect")
        return wanted is None or wanted == dialect
    return include_object


def compare(connection: Connection) -> list[Any]:
    """How the database differs from ``schema.metadata`` (Alembic autogenerate's diffs; [] = none).

    Server defaults are compared on PostgreSQL only: Alembic reports SQLite's ``''`` defaults
    as changed when they are not."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    pg = connection.dialect.name == "postgresql"
    mc = MigrationContext.configure(connection, opts={
        "compare_type": True, "compare_server_default": pg,
        "include_object": object_filter(connection.dialect.name)})
    with warnings.catch_warnings():  # SQLite cannot reflect accounts_name_lower, which is not its own anyway
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index", UserWarning)
        return compare_metadata(mc, metadata)


def alembic_config(connection: Connection) -> "Config":
    """An Alembic configuration running the hub's migrations on ``connection``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection) -> None:
    """Apply every migration not yet applied (``alembic upgrade head``).

    Committed here, unless the caller has a transaction open on ``connection``: then the
    migrations join it and commit with it."""
    from alembic import command

    outer = connection.in_transaction()
    command.upgrade(alembic_config(connection), "head")
    _commit(connection, outer)


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: not under Alembic yet)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def at_head(connection: Connection) -> bool:
    """Whether the database is at ``HEAD`` already (one query; False when not under Alembic)."""
    try:
        with connection.begin_nested():  # a missing table must not spoil the caller's transaction
            return connection.execute(text("select version_num from alembic_version")).scalar() == HEAD
    except DBAPIError:
        return False


def adopt_legacy(connection: Connection) -> None:
    """Upgrade, first taking in a hub.db the old code made (``_migrations``, no ``alembic_version``).

    Such a database holds every baseline table: it gains ``usage_events.month`` (yyyymm of
    received_at in UTC+8, computed for the rows it has), is stamped at the baseline, and
    the later revisions then apply as on any other database. One that lacks some of the
    tables was made by a release older than the last sqlite-utils one: refused. Committed
    as ``upgrade`` is.
    """
    if at_head(connection):
        return
    outer = connection.in_transaction()
    tables = set(inspect(connection).get_table_names())
    if "_migrations" in tables and "alembic_version" not in tables:
        missing = LEGACY_TABLES - tables
        if missing:
            names = ", ".join(sorted(missing))
            raise DataDirError(f"数据库来自过旧的版本（缺少表 {names}），请先用上一个版本打开一次",
                               f"the database comes from too old a release (no {names}): open it once with the previous release first")
        _add_usage_month(connection)
        from alembic import command

        command.stamp(alembic_config(connection), BASELINE)
        _commit(connection, outer)
    upgrade(connection)


def _add_usage_month(connection: Connection) -> None:
    """Rebuild the old usage_events (key device_id, seq) with the baseline's month column."""
    columns = {c["name"] for c in inspect(connection).get_columns("usage_events")}
    if "month" in columns:
        return
    # SQLite cannot change a primary key in place: copy into the new shape, then swap names
    connection.exec_driver_sql(
        "create table usage_events_adopt (device_id text not null, seq bigint not null, month bigint not null,"
        " ts double not null, actor text not null, verb text not null, object text not null, data text not null,"
        " received_at double not null, primary key (device_id, seq, month)) without rowid")
    connection.exec_driver_sql(
        "insert into usage_events_adopt (device_id, seq, month, ts, actor, verb, object, data, received_at)"
        " select device_id, seq, cast(strftime('%Y%m', received_at + 8 * 3600, 'unixepoch') as integer),"
        " ts, actor, verb, object, data, received_at from usage_events")
    connection.exec_driver_sql("drop table usage_events")
    connection.exec_driver_sql("alter table usage_events_adopt rename to usage_events")


def _commit(connection: Connection, outer: bool) -> None:
    """Commit what we began (reads autobegin a transaction too), never the caller's transaction."""
    if not outer and connection.in_transaction():
        connection.commit()
