"""One home per concept: each shared constant, the usage acknowledgement, trusted time and
the sealed box are defined in exactly one module of the product, and everything else
imports them from there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PRODUCT = ("edge_agent", "hub_sync", "provisioning", "firmware", "classroom_ui")


def _modules():
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            yield str(path.relative_to(REPO)), ast.parse(path.read_text("utf-8"))


def _definitions(name: str) -> list[str]:
    """Modules that bind ``name`` at top level (an assignment, a class or a function)."""
    found = []
    for module, tree in _modules():
        for node in tree.body:
            targets = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets.append(node.target.id)
            if name in targets or getattr(node, "name", None) == name:
                found.append(module)
    return found


@pytest.mark.parametrize("name,home", [
    ("MIB", "hub_sync/core/const.py"),
    ("COPY_CHUNK_BYTES", "hub_sync/core/const.py"),
    ("SQLITE_BUSY_TIMEOUT_MS", "hub_sync/core/const.py"),
    ("GRACEFUL_SHUTDOWN_S", "hub_sync/core/const.py"),
    ("PINNED_ROOT_FILE", "edge_agent/const.py"),
    ("SETTINGS_FILE", "edge_agent/config.py"),
    ("UsageAck", "hub_sync/formats/usage_ack.py"),
    ("ACK_KIND", "hub_sync/formats/usage_ack.py"),
    ("BATCH_KIND", "hub_sync/formats/usage_batch.py"),
    ("DOWNLINK_KIND", "hub_sync/formats/downlink.py"),
    ("POLL_KIND", "hub_sync/formats/downlink.py"),
    ("TrustedClock", "hub_sync/core/trusted_clock.py"),
])
def test_a_shared_name_is_defined_in_one_module(name, home):
    assert _definitions(name) == [home]


def test_one_sealed_box_construction():
    users = [module for module, tree in _modules()
             if any(isinstance(n, ast.Name) and n.id == "SealedBox" for n in ast.walk(tree))]
    assert users == ["hub_sync/formats/sealed_box.py"]


def test_the_trusted_time_row_is_only_read_to_adopt_it():
    readers = [module for module, tree in _modules()
               if any(isinstance(n, ast.Constant) and n.value == "trusted_time" for n in ast.walk(tree))]
    assert readers == ["edge_agent/appliance.py"]
