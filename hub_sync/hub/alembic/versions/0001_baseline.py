"""Baseline: the hub's schema as the sqlite-utils migration sets left it (issue 13).

Tables as ``hub_sync.hub.schema`` defines them, plus what only DDL can say:
- ``audit_log`` is append-only: triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL)
  with the error text the old SQLite triggers raised ("audit_log is append-only");
- PostgreSQL: ``usage_events`` is partitioned by month; this creates the partitions of the
  current and next month (the ingest code makes later ones, ``hub_sync.hub.partitions``);
- PostgreSQL: ``bits_or(bytea, bytea)``, the OR of two little-endian bitsets the roll-ups
  keep, as ``hub_sync.hub.rollup.bits_or`` is in Python (registered on SQLite connections).

A SQLite hub.db the old code made is stamped at this revision by
``hub_sync.hub.schema_migrations.adopt_legacy`` instead of running it (after it gained
``usage_events.month``), so this revision must stay exactly what the old code made.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# the tables this revision creates
TABLES = """
    accounts audit_log channels console_sessions device_usage_state devices downlink_messages
    downlink_reported downlink_scan enrollment_tokens firmware_releases firmware_rollout
    fleet_devices fleet_history hub_resources hub_settings live_held live_messages live_polls
    live_teachers live_timetable login_failures lrs_cursor lrs_status offer_scan offers
    provisionings rollup rollup_assignments rollup_changes rollup_people subscriptions transfers
    usage_batches usage_events usb_offered_uploads
""".split()

APPEND_ONLY = "audit_log is append-only"

# Python's rollup.bits_or: NULL is the empty set, the shorter operand is zero-extended,
# the result has no trailing zero bytes (so b'' for the empty set, never NULL).
PG_BITS_OR = """
create or replace function bits_or(a bytea, b bytea) returns bytea
language plpgsql immutable parallel safe as $$
declare
    long bytea := coalesce(a, ''::bytea);
    short bytea := coalesce(b, ''::bytea);
    n int;
begin
    if length(long) < length(short) then
        long := short;
        short := coalesce(a, ''::bytea);
    end if;
    for i in 0 .. length(short) - 1 loop
        long := set_byte(long, i, get_byte(long, i) | get_byte(short, i));
    end loop;
    n := length(long);
    while n > 0 and get_byte(long, n - 1) = 0 loop
        n := n - 1;
    end loop;
    return substring(long from 1 for n);
end
$$
"""

PG_APPEND_ONLY = f"""
create or replace function audit_log_append_only() returns trigger
language plpgsql as $$
begin
    raise exception '{APPEND_ONLY}' using errcode = 'restrict_violation';
end
$$
"""


def _next(month: int) -> int:
    """The yyyymm after ``month`` (a frozen copy of hub_sync.hub.partitions.next_month)."""
    return (month // 100 + 1) * 100 + 1 if month % 100 == 12 else month + 1


def _months_now() -> tuple[int, int]:
    """This month and the next, yyyymm in UTC+8."""
    d = datetime.fromtimestamp(time.time(), timezone(timedelta(hours=8)))
    month = d.year * 100 + d.month
    return month, _next(month)


def upgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('name', sa.Text().with_variant(sa.Text(collation='NOCASE'), 'sqlite'), nullable=False),
    sa.Column('role', sa.Text(), nullable=False),
    sa.Column('school', sa.Text(), nullable=True),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default='active', nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sqlite_autoincrement=True
    )
    if pg:  # no NOCASE collation there: names unique whatever their case
        op.create_index('accounts_name_lower', 'accounts', [sa.literal_column('lower(name)')], unique=True)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('action', sa.Text(), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('details', sa.Text(), server_default='{}', nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sqlite_autoincrement=True
    )
    op.create_index('audit_target', 'audit_log', ['target'], unique=False)
    op.create_table('channels',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('mandatory', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('client', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('last_seen', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('console_sessions_account', 'console_sessions', ['account_id'], unique=False)
    op.create_table('device_usage_state',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('contiguous_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_batch_hash', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('devices',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('school_name', sa.Text(), nullable=True),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('enrolled_at', sa.Double(), nullable=True),
    sa.Column('revoked_at', sa.Double(), nullable=True),
    sa.Column('last_seen_at', sa.Double(), nullable=True),
    sa.Column('downlink_start', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_index('idx_devices_school_code', 'devices', ['school_code'], unique=False)
    op.create_table('downlink_messages',
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('school_code', 'seq'),
    sqlite_with_rowid=False
    )
    op.create_table('downlink_reported',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('applied_seq', sa.BigInteger(), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('downlink_scan',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('scanned_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('enrollment_tokens',
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('school_name', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('expires_at', sa.Double(), nullable=False),
    sa.Column('used_by', sa.Text(), nullable=True),
    sa.Column('used_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_table('firmware_releases',
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('manifest_sha256', sa.Text(), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=True),
    sa.Column('files', sa.BigInteger(), nullable=True),
    sa.Column('downgrade', sa.BigInteger(), nullable=True),
    sa.Column('published_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('version')
    )
    op.create_table('firmware_rollout',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('rules', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('fleet_devices',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('report_seq', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('device_time', sa.Double(), nullable=False),
    sa.Column('clock_offset_s', sa.Double(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('teaching_point', sa.Text(), nullable=False),
    sa.Column('firmware', sa.Text(), nullable=False),
    sa.Column('sync_attempt', sa.Text(), nullable=False),
    sa.Column('sync_success', sa.Text(), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=False),
    sa.Column('disk_free_bytes', sa.BigInteger(), nullable=False),
    sa.Column('corrupt_files', sa.BigInteger(), nullable=False),
    sa.Column('pending_usage', sa.BigInteger(), nullable=False),
    sa.Column('failed_messages', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_index('fleet_devices_point', 'fleet_devices', ['school_code', 'teaching_point'], unique=False)
    op.create_table('fleet_history',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('report_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('device_time', sa.Double(), nullable=False),
    sa.Column('clock_offset_s', sa.Double(), nullable=False),
    sa.Column('version', sa.Text(), nullable=False),
    sa.Column('teaching_point', sa.Text(), nullable=False),
    sa.Column('firmware', sa.Text(), nullable=False),
    sa.Column('sync_attempt', sa.Text(), nullable=False),
    sa.Column('sync_success', sa.Text(), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=False),
    sa.Column('disk_free_bytes', sa.BigInteger(), nullable=False),
    sa.Column('corrupt_files', sa.BigInteger(), nullable=False),
    sa.Column('pending_usage', sa.BigInteger(), nullable=False),
    sa.Column('failed_messages', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'report_seq'),
    sqlite_with_rowid=False
    )
    op.create_table('hub_resources',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=True),
    sa.Column('meta', sa.Text(), nullable=True),
    sa.Column('files', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('idx_hub_resources_channel', 'hub_resources', ['channel'], unique=False)
    op.create_table('hub_settings',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('live_held',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('held', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('live_messages',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('lesson', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('pupil', sa.Text(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('sent_at', sa.Double(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'seq'),
    sqlite_with_rowid=False
    )
    op.create_index('live_messages_lesson', 'live_messages', ['lesson', 'school_code', 'kind'], unique=False)
    op.create_table('live_polls',
    sa.Column('poll_id', sa.Text(), nullable=False),
    sa.Column('lesson', sa.Text(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('options', sa.Text(), nullable=False),
    sa.Column('started_at', sa.Double(), nullable=False),
    sa.Column('closed_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('poll_id')
    )
    op.create_table('live_teachers',
    sa.Column('lesson', sa.Text(), nullable=False),
    sa.Column('token_hash', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('lesson')
    )
    op.create_table('live_timetable',
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('lesson', sa.Text(), nullable=False),
    sa.Column('start', sa.Text(), nullable=False),
    sa.Column('minutes', sa.BigInteger(), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('grade', sa.Text(), nullable=False),
    sa.Column('teacher', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('school_code', 'lesson'),
    sqlite_with_rowid=False
    )
    op.create_table('login_failures',
    sa.Column('key', sa.Text(), nullable=False),
    sa.Column('failures', sa.BigInteger(), nullable=False),
    sa.Column('first_at', sa.Double(), nullable=False),
    sa.Column('locked_until', sa.Double(), server_default=sa.text('0'), nullable=False),
    sa.Column('lock_level', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('locked_at', sa.Double(), server_default=sa.text('0'), nullable=False),
    sa.Column('wrong_total', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('lrs_cursor',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('relayed_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('lrs_status',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('last_pass_at', sa.Double(), nullable=True),
    sa.Column('last_ok_at', sa.Double(), nullable=True),
    sa.Column('last_error', sa.Text(), server_default='', nullable=False),
    sa.Column('last_error_at', sa.Double(), nullable=True),
    sa.Column('sent_total', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint('id = 1', name='lrs_status_one_row'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('offer_scan',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('scanned_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id')
    )
    op.create_table('offers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('resource_id', sa.Text(), nullable=False),
    sa.Column('uploader', sa.Text(), server_default='', nullable=False),
    sa.Column('meta', sa.Text(), nullable=False),
    sa.Column('files', sa.Text(), nullable=False),
    sa.Column('origin', sa.Text(), nullable=False),
    sa.Column('state', sa.Text(), server_default='pending', nullable=False),
    sa.Column('channel', sa.Text(), nullable=True),
    sa.Column('published_id', sa.Text(), nullable=True),
    sa.Column('reason', sa.Text(), server_default='', nullable=False),
    sa.Column('decided_by', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.Double(), nullable=True),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('device_id', 'resource_id', name='offers_device_resource'),
    sqlite_autoincrement=True
    )
    op.create_index('offers_state', 'offers', ['state', 'received_at'], unique=False)
    op.create_table('provisionings',
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=True),
    sa.Column('school_name', sa.Text(), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('token')
    )
    op.create_table('rollup',
    sa.Column('level', sa.Text(), nullable=False),
    sa.Column('start', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('dim', sa.Text(), nullable=False),
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('assigned', sa.BigInteger(), nullable=False),
    sa.Column('handed_in', sa.BigInteger(), nullable=False),
    sa.Column('learners', sa.LargeBinary(), nullable=False),
    sa.Column('teachers', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'start', 'dim', 'device_id'),
    sqlite_with_rowid=False
    )
    op.create_table('rollup_assignments',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('assignment', sa.Text(), nullable=False),
    sa.Column('resource', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'assignment'),
    sqlite_with_rowid=False
    )
    op.create_table('rollup_changes',
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('day', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('changed_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'day'),
    sqlite_with_rowid=False
    )
    op.create_table('rollup_people',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('idx', sa.BigInteger(), nullable=False),
    sa.Column('teacher', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'actor'),
    sqlite_with_rowid=False
    )
    op.create_table('subscriptions',
    sa.Column('school_code', sa.Text(), nullable=False),
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('school_code', 'channel')
    )
    op.create_table('transfers',
    sa.Column('transfer_id', sa.Text(), nullable=False),
    sa.Column('number', sa.Text(), nullable=False),
    sa.Column('from_school', sa.Text(), nullable=False),
    sa.Column('to_school', sa.Text(), nullable=False),
    sa.Column('to_class', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=True),
    sa.Column('delivered_seq', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('transfer_id')
    )
    op.create_table('usage_batches',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('batch_hash', sa.Text(), nullable=False),
    sa.Column('first_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('prev_hash', sa.Text(), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'batch_hash'),
    sqlite_with_rowid=False
    )
    op.create_table('usage_events',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('month', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ts', sa.Double(), nullable=False),
    sa.Column('actor', sa.Text(), nullable=False),
    sa.Column('verb', sa.Text(), nullable=False),
    sa.Column('object', sa.Text(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('device_id', 'seq', 'month'),
    postgresql_partition_by='RANGE (month)',
    sqlite_with_rowid=False
    )
    op.create_table('usb_offered_uploads',
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('resource_id', sa.Text(), nullable=False),
    sa.Column('school_code', sa.Text(), nullable=True),
    sa.Column('meta', sa.Text(), nullable=True),
    sa.Column('received_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('device_id', 'resource_id')
    )

    op.execute("insert into lrs_status (id) values (1)")  # its one row, as the old migration made it

    if pg:
        for month in _months_now():
            op.execute(f"create table if not exists usage_events_{month} partition of usage_events"
                       f" for values from ({month}) to ({_next(month)})")
        op.execute(PG_BITS_OR)
        op.execute(PG_APPEND_ONLY)
        op.execute("create trigger audit_log_no_update before update or delete on audit_log"
                   " for each row execute function audit_log_append_only()")
        op.execute("create trigger audit_log_no_truncate before truncate on audit_log"
                   " for each statement execute function audit_log_append_only()")
    else:
        for event in ("update", "delete"):
            op.execute(f"create trigger audit_log_no_{event} before {event} on audit_log"
                       f" begin select raise(abort, '{APPEND_ONLY}'); end")


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        op.execute("drop function if exists bits_or(bytea, bytea)")
    for name in TABLES:  # usage_events' partitions go with it (cascade)
        op.execute(f"drop table if exists {name}{' cascade' if pg else ''}")
    if pg:
        op.execute("drop function if exists audit_log_append_only()")
