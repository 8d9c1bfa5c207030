"""Migrations are applied once, when the appliance or the hub is opened: every set of the
appliance is listed in one place (``Appliance.open``'s ``MIGRATIONS``), the hub's schema is
Alembic's (``Hub.open`` upgrades to head), so a table exists before any request, command or
stick needs it, and nothing applies a set lazily or per call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edge_agent.appliance import MIGRATIONS, Appliance
from edge_agent.config import EdgeConfig
from hub_sync.core.migrations import Migrations
from hub_sync.hub import schema_migrations
from hub_sync.hub.hub import Hub

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("edge_agent", "hub_sync", "provisioning", "firmware")


def _migration_sets() -> dict[str, list[str]]:
    """Module -> names of the ``Migrations(...)`` sets it defines, found in the source."""
    found: dict[str, list[str]] = {}
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Migrations" and node.args:
                    module = ".".join(path.relative_to(REPO).with_suffix("").parts)
                    found.setdefault(module, []).append(node.args[0].value)
    found.pop("hub_sync.core.migrations", None)
    return found


def test_every_migration_set_is_listed_once_by_the_appliance_or_the_hub():
    listed = [m.name for m in MIGRATIONS]
    defined = sorted(name for names in _migration_sets().values() for name in names)
    assert sorted(listed) == defined and len(set(listed)) == len(listed)
    assert not any(module.startswith("provisioning") for module in _migration_sets())  # tables live below it


def test_nothing_applies_migrations_outside_the_two_opens():
    callers = []
    for package in PRODUCT:
        for path in (REPO / package).rglob("*.py"):
            if re.search(r"migrations\.apply\(", path.read_text("utf-8")) and path.name != "migrations.py":
                callers.append(str(path.relative_to(REPO)))
    assert callers == []


def test_opening_applies_every_set_and_a_second_open_changes_nothing(tmp_path):
    config = EdgeConfig.load(tmp_path / "edge", {"free_space_reserve_mb": 1, "advertise": False})
    thing = Appliance.open(config)
    try:
        assert all(isinstance(m, Migrations) and m.pending(thing.db) == [] for m in MIGRATIONS)
        for table in ("idempotent_requests", "usb_exports", "usb_state"):
            assert thing.db[table].exists()
        assert [m.apply(thing.db) for m in MIGRATIONS] == [[] for _ in MIGRATIONS]
    finally:
        thing.close()


def test_opening_a_hub_upgrades_it_to_head_and_a_second_open_changes_nothing(tmp_path, hub_db):
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
    try:
        with hub.db.transaction():
            conn = hub.db.connection()
            assert schema_migrations.current(conn) is not None and schema_migrations.compare(conn) == []
        assert "usb_offered_uploads" in hub.db.table_names()
        before = hub.db.scalar("select version_num from alembic_version")
    finally:
        hub.close()
    again = Hub.open(tmp_path / "hub", reserve_mb=1)
    try:
        assert again.db.scalar("select version_num from alembic_version") == before
    finally:
        again.close()
