"""The hub's schema: Alembic's migrations build exactly ``hub_sync.hub.schema`` on SQLite and
PostgreSQL; the audit log refuses changes; PostgreSQL's ``bits_or`` is rollup's; a hub.db the
old sqlite-utils code made is adopted; usage_events' monthly partitions."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, exc, inspect, text

from hub_sync.core.sqlite_db import open_db
from hub_sync.hub import schema_migrations
from hub_sync.hub.partitions import ensure_month_partitions, month_of, next_month
from hub_sync.hub.rollup import bits_or


def sqlite_engine(path):
    """A SQLite engine whose transactions are real ones, DDL included (SQLAlchemy's pysqlite
    recipe, as hub_sync.hub.database opens hub.db): the adoption must be all or nothing."""
    eng = create_engine(f"sqlite:///{path}")
    event.listen(eng, "connect", lambda dbapi_conn, record: setattr(dbapi_conn, "isolation_level", None))
    event.listen(eng, "begin", lambda conn: conn.exec_driver_sql("begin immediate"))
    return eng


def sqlalchemy_url(url: str) -> str:
    """The cluster's URL with SQLAlchemy's psycopg 3 driver named."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """An empty database of each engine."""
    if request.param == "sqlite":
        eng = sqlite_engine(tmp_path / "hub.db")
    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.create_database()
        eng = create_engine(sqlalchemy_url(url))
    yield eng
    eng.dispose()
    if request.param == "postgresql":
        cluster.drop_database(url)


@pytest.fixture
def pg_engine(postgres):
    """An empty PostgreSQL database."""
    url = postgres.create_database()
    eng = create_engine(sqlalchemy_url(url))
    yield eng
    eng.dispose()
    postgres.drop_database(url)


def head(conn) -> str:
    return ScriptDirectory.from_config(schema_migrations.alembic_config(conn)).get_current_head()


def test_an_empty_database_upgrades_to_exactly_the_schema(engine):
    with engine.connect() as conn:
        assert schema_migrations.current(conn) is None
        schema_migrations.upgrade(conn)
        assert schema_migrations.current(conn) == head(conn)
        assert schema_migrations.compare(conn) == []
        schema_migrations.upgrade(conn)  # again: nothing to do
        assert schema_migrations.current(conn) == head(conn)


def test_the_audit_log_refuses_update_and_delete(engine):
    with engine.connect() as conn:
        schema_migrations.upgrade(conn)
    with engine.begin() as conn:
        conn.execute(text("insert into audit_log (at, actor, action, target) values (1.5, 'li', 'approved', 'offer:1')"))
    for sql in ("update audit_log set reason = 'covered up'", "delete from audit_log"):
        with pytest.raises(exc.IntegrityError, match="audit_log is append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    if engine.dialect.name == "postgresql":
        with pytest.raises(exc.IntegrityError, match="audit_log is append-only"):
            with engine.begin() as conn:
                conn.execute(text("truncate audit_log"))
    with engine.connect() as conn:
        rows = conn.execute(text("select actor, action, target, reason, details from audit_log")).all()
    assert [tuple(r) for r in rows] == [("li", "approved", "offer:1", "", "{}")]


def random_bits(rng: random.Random) -> bytes | None:
    """None, empty, or up to 40 random bytes, sometimes with trailing zero bytes."""
    kind = rng.random()
    if kind < 0.1:
        return None
    if kind < 0.15:
        return b""
    value = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 41)))
    return value + b"\0" * rng.randrange(3) if kind < 0.4 else value


def test_postgres_bits_or_is_rollups_bits_or(pg_engine):
    rng = random.Random(13)
    pairs = [(random_bits(rng), random_bits(rng)) for _ in range(196)]
    pairs += [(None, None), (b"\x01", b"\x01\x00\x80"), (b"\xff\x00", b"\x00\x00\x00"), (b"", None)]
    with pg_engine.connect() as conn:
        schema_migrations.upgrade(conn)
        for a, b in pairs:
            got = conn.execute(text("select bits_or(cast(:a as bytea), cast(:b as bytea))"), {"a": a, "b": b}).scalar()
            assert bytes(got) == bits_or(a, b), (a, b)


def test_a_hub_db_of_the_old_code_is_adopted_with_its_rows(tmp_path):
    path = tmp_path / "hub.db"
    old = open_db(path)
    # the tables as the hub's sqlite-utils migrations made them, before Alembic (stop 18)
    old.conn.executescript((Path(__file__).parent / "data" / "legacy_hub_schema.sql").read_text("utf-8"))
    nov_30_evening_utc = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc).timestamp()  # December in UTC+8
    with old.conn:
        old.conn.execute("insert into devices (device_id, school_code, public_key, status) values ('d1', 's1', 'k', 'active')")
        old.conn.executemany("insert into usage_events values ('d1', ?, 1.0, 'a', 'viewed', 'r1', '{}', ?)",
                             [(1, 1_700_000_000.0), (2, nov_30_evening_utc)])
        old.conn.execute("insert into audit_log (at, actor, action, target) values (2.0, 'cli:root', 'account_added', 'account:li')")
        old.conn.execute("insert into accounts (name, role, password_hash, created_at, updated_at)"
                         " values ('Li', 'county_admin', 'h', 1.0, 1.0)")
    old.close()

    eng = sqlite_engine(path)
    try:
        with eng.connect() as conn:
            schema_migrations.adopt_legacy(conn)
            assert schema_migrations.current(conn) == head(conn)
            assert conn.execute(text("select school_code from devices")).scalar() == "s1"
            assert conn.execute(text("select seq, month from usage_events order by seq")).all() == [(1, 202311), (2, 202612)]
            assert conn.execute(text("select actor from audit_log")).scalar() == "cli:root"
            assert conn.execute(text("select id from accounts where name = 'li'")).scalar() == 1  # still NOCASE
            assert {"month", "received_at"} <= {c["name"] for c in inspect(conn).get_columns("usage_events")}
            schema_migrations.adopt_legacy(conn)  # a second start: nothing to adopt
            assert conn.execute(text("select count(*) from usage_events")).scalar() == 2
        with pytest.raises(exc.IntegrityError, match="append-only"):
            with eng.begin() as conn:
                conn.execute(text("delete from audit_log"))
    finally:
        eng.dispose()


def test_adopting_an_empty_database_just_upgrades_it(engine):
    with engine.connect() as conn:
        schema_migrations.adopt_legacy(conn)
        assert schema_migrations.current(conn) == head(conn)
        assert schema_migrations.compare(conn) == []


def test_usage_events_rows_land_in_their_month_partition(pg_engine):
    with pg_engine.connect() as conn:
        schema_migrations.upgrade(conn)
    with pg_engine.begin() as conn:
        ensure_month_partitions(conn, [202611, 203001])
        ensure_month_partitions(conn, [202611])  # again: already there
        for seq, month in ((1, 202611), (2, 203001)):
            conn.execute(text("insert into usage_events (device_id, seq, month, ts, actor, verb, object, data, received_at)"
                              " values ('d1', :seq, :month, 1.0, 'a', 'viewed', 'r1', '{}', 1.0)"), {"seq": seq, "month": month})
    with pg_engine.connect() as conn:
        where = conn.execute(text("select seq, tableoid::regclass::text from usage_events order by seq")).all()
        assert [tuple(r) for r in where] == [(1, "usage_events_202611"), (2, "usage_events_203001")]
        assert schema_migrations.compare(conn) == []  # partitions are not schema differences
        with pytest.raises(ValueError, match="yyyymm"):
            ensure_month_partitions(conn, [202613])
    with pytest.raises(exc.IntegrityError, match="no partition"):  # no DEFAULT partition: a month must be made first
        with pg_engine.begin() as conn:
            conn.execute(text("insert into usage_events (device_id, seq, month, ts, actor, verb, object, data, received_at)"
                              " values ('d1', 3, 204005, 1.0, 'a', 'viewed', 'r1', '{}', 1.0)"))


def test_month_partitions_are_nothing_on_sqlite(tmp_path):
    eng = sqlite_engine(tmp_path / "hub.db")
    try:
        with eng.begin() as conn:
            schema_migrations.upgrade(conn)
            ensure_month_partitions(conn, [202611])
            assert "usage_events_202611" not in inspect(conn).get_table_names()
    finally:
        eng.dispose()


def test_months_are_counted_in_utc_plus_8():
    assert month_of(datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc).timestamp()) == 202611
    assert month_of(datetime(2026, 11, 30, 16, 0, tzinfo=timezone.utc).timestamp()) == 202612
    assert next_month(202612) == 202701
    assert next_month(202611) == 202612


def test_the_head_a_hub_checks_at_open_is_alembics_head(engine):
    with engine.connect() as conn:
        assert schema_migrations.HEAD == head(conn)  # a new revision must move HEAD, or hubs would never get it
        assert not schema_migrations.at_head(conn)  # empty: not under Alembic yet
        schema_migrations.upgrade(conn)
        assert schema_migrations.at_head(conn)
