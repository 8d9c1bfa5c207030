"""Alembic's environment for the hub database (run by ``hub_sync.hub.schema_migrations``).

Online only, on the SQLAlchemy connection passed in ``config.attributes["connection"]``:
the hub opens its database itself (SQLite file or PostgreSQL URL) and hands it over.
"""

from __future__ import annotations

from alembic import context

from hub_sync.hub.schema import metadata
from hub_sync.hub.schema_migrations import object_filter


def run_migrations_online() -> None:
    """Run the migrations on the hub's connection, in one transaction."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata,
                      include_object=object_filter(connection.dialect.name),
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("the hub's migrations run online, on the hub's own connection")
run_migrations_online()
