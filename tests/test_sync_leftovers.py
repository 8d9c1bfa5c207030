"""A sync starts by removing what an earlier sync killed at the wrong moment left in
its state folder: python-tuf's temporary metadata files and old atomic-write leftovers
(``test_sync_faults`` kills syncs a hundred times and checks the whole data folder)."""

from __future__ import annotations

import os
import time

from hub_sync.client.sync_client import ATOMIC_LEFTOVER_AGE_S


def test_a_sync_removes_tuf_and_atomic_write_leftovers_of_a_killed_sync(env):
    env.add("yuwen-1", "r1", {"index.html": b"<h1>a o e</h1>"})
    env.publish()
    env.sync()
    sync_dir = env.app.data_dir / "sync"
    tuf_leftover = sync_dir / "tuf" / "tmpk3x9_q2a"  # ngclient's NamedTemporaryFile before its rename
    tuf_leftover.write_bytes(b'{"signed": ')
    old = sync_dir / ".clock.json.a1b2c3.tmp"  # atomic_file's, cut off long ago
    old.write_text("{}")
    past = time.time() - ATOMIC_LEFTOVER_AGE_S - 5
    os.utime(old, (past, past))
    fresh = sync_dir / ".clock.json.d4e5f6.tmp"  # being written right now by a served appliance
    fresh.write_text("{}")
    env.add("yuwen-1", "r2", {"sheet.pdf": b"%PDF-1.4"})
    env.publish()
    env.sync()
    assert not tuf_leftover.exists() and not old.exists()
    assert fresh.exists()
    assert {"r1", "r2"} <= {r[0] for r in env.state()[0]}
