"""Province scale: channels mirrored from the province, the county-to-province relay (issue 13).

- ``channels.mirror`` and ``channel_mirrors``: province channels a county serves as a TUF
  delegation to the province's key (``hub_sync.hub.channel_mirrors``, ``mirror_sync``);
- ``devices.county``: at a province, the county that registered and countersigned a device;
- ``relay_outbox``, ``relay_sent`` (county side) and ``relay_counties``, ``relay_bundles``
  (province side): the relay of devices' signed usage batches (``hub_sync.hub.relay_*``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("channel_mirrors", "relay_outbox", "relay_sent", "relay_counties", "relay_bundles")


def upgrade() -> None:
    # batch mode: SQLite adds a column with a plain ALTER, PostgreSQL too (no table copy needed)
    with op.batch_alter_table("channels") as batch:
        batch.add_column(sa.Column("mirror", sa.BigInteger(), server_default="0", nullable=False))
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("county", sa.Text(), nullable=True))
    op.create_table('channel_mirrors',
    sa.Column('channel', sa.Text(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('added_at', sa.Double(), nullable=False),
    sa.Column('synced_at', sa.Double(), nullable=True),
    sa.Column('version', sa.BigInteger(), nullable=True),
    sa.Column('error', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('channel')
    )
    # the county-to-province relay (hub_sync.hub.schema.relay)
    op.create_table('relay_outbox',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('device_id', sa.Text(), nullable=False),
    sa.Column('envelope', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sqlite_autoincrement=True
    )
    op.create_table('relay_sent',
    sa.Column('relay_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('first_outbox', sa.BigInteger(), nullable=False),
    sa.Column('last_outbox', sa.BigInteger(), nullable=False),
    sa.Column('batches', sa.BigInteger(), nullable=False),
    sa.Column('bundle', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('receipt', sa.LargeBinary(), nullable=True),
    sa.Column('accepted', sa.BigInteger(), nullable=True),
    sa.Column('refused', sa.Text(), nullable=True),
    sa.Column('acked_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('relay_seq')
    )
    op.create_table('relay_counties',
    sa.Column('county', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('added_at', sa.Double(), nullable=False),
    sa.Column('revoked_at', sa.Double(), nullable=True),
    sa.Column('relay_cursor', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('roster_at', sa.Double(), server_default='0', nullable=False),
    sa.Column('last_relay_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('county')
    )
    op.create_table('relay_bundles',
    sa.Column('county', sa.Text(), nullable=False),
    sa.Column('relay_seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('bundle_hash', sa.Text(), nullable=False),
    sa.Column('accepted', sa.BigInteger(), nullable=False),
    sa.Column('refused', sa.BigInteger(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('receipt', sa.LargeBinary(), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('county', 'relay_seq')
    )


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("county")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("mirror")
