"""Migrations are applied once, when the appliance or the hub is opened: every set is
listed in one place (``Appliance.open``'s ``MIGRATIONS``, ``Hub.open``'s ``HUB_MIGRATIONS``),
so a table exists before any request, command or stick needs it, and nothing applies a
set lazily or per call."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from edge_agent.appliance import MIGRATIONS, Appliance
from edge_agent.config import EdgeConfig
from hub_sync.core.migrations import Migrations
from hub_sync.hub.hub import HUB_MIGRATIONS, Hub

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
    listed = [m.name for m in MIGRATIONS] + [m.name for m in HUB_MIGRATIONS]
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
    for sets, opened in ((MIGRATIONS, lambda: Appliance.open(config)),
                         (HUB_MIGRATIONS, lambda: Hub.init(tmp_path / "hub", reserve_mb=1))):
        thing = opened()
        try:
            assert all(isinstance(m, Migrations) and m.pending(thing.db) == [] for m in sets)
            for table in ("idempotent_requests", "usb_exports", "usb_state") if sets is MIGRATIONS else ("usb_offered_uploads",):
                assert thing.db[table].exists()
            assert [m.apply(thing.db) for m in sets] == [[] for _ in sets]
        finally:
            thing.close()
