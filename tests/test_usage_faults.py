"""Usage upload over a real slow link that gets cut: a network namespace for the appliance,
a veth pair to the hub, ``tc tbf`` at 2 Mbit/s, ``ip link set … down`` mid-upload.

After every cut and a successful resend the hub holds exactly the appliance's events
(none missing, none twice), and nothing is left behind on either side.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hub_sync.core.processes import wait_until
from fixtures.common import REPO
from fixtures.link import NEEDS_LINK
from fixtures.servers import GunicornHub, free_port
from fixtures.usage import enroll, fill_journal_fast

pytestmark = [*NEEDS_LINK, pytest.mark.slow]  # every test here takes 7-40 s (a shaped link, cut again and again)

UPLOAD_SCRIPT = """
import sys, httpx
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.errors import SyncError
app = Appliance.open(EdgeConfig.load(sys.argv[1], {"free_space_reserve_mb": 1, "advertise": False}))
print("sending", flush=True)
try:
    r = upload_pending(app, sys.argv[2], timeout=httpx.Timeout(5.0, write=2.0))
except SyncError as exc:
    print("FAILED", exc, flush=True)
    sys.exit(3)
print("OK", r.acked_seq, flush=True)
"""
HUB_TABLES = {"_migrations", "devices", "usage_events", "device_usage_state", "usage_batches"}


def upload_in_namespace(link, data_dir, url, cut_after_s: float | None = None) -> str:
    """Run an upload inside the appliance's namespace; optionally pull the cable after ``cut_after_s``."""
    proc = subprocess.Popen(link.inside(sys.executable, "-c", UPLOAD_SCRIPT, str(data_dir), url),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout.readline().strip() == "sending"
        if cut_after_s is not None:
            time.sleep(cut_after_s)
            link.down()
        out = proc.stdout.read()
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        if cut_after_s is not None:
            link.up()
    return out


def hub_sessions(port: int) -> int:
    """Established TCP connections to the hub's port (stale sessions would stay here)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, timeout=10).stdout
    return len([line for line in out.splitlines() if line.strip()])


@pytest.fixture
def setup(appliance, hub, link):
    """The appliance enrolled on a hub served by gunicorn on the host's end of ``link``."""
    enroll(appliance, hub)
    server = GunicornHub(hub.data_dir, free_port(), host=link.hub_ip).start()
    yield appliance, hub, server
    server.kill()


def assert_exactly_once(hub, appliance):
    total = appliance.journal.last_seq()
    got = hub.db.execute("select count(*), count(distinct seq), min(seq), max(seq) from usage_events where device_id = ?",
                         [appliance.device_id]).fetchone()
    assert got == (total, total, 1, total)
    assert appliance.journal.acknowledged() == total and appliance.journal.pending_count() == 0


def test_link_cut_mid_upload_then_restored_delivers_every_event_once(setup, link):
    appliance, hub, server = setup
    fill_journal_fast(appliance, 25_000)
    out = upload_in_namespace(link, appliance.data_dir, server.url, cut_after_s=0.3)
    assert "FAILED" in out and ("timed out" in out or "cannot reach" in out), out
    assert appliance.journal.acknowledged() == 0 and appliance.journal.pending_count() == 25_000
    assert "OK 25000" in upload_in_namespace(link, appliance.data_dir, server.url)
    assert_exactly_once(hub, appliance)


def test_link_cut_many_times_in_a_row_leaves_nothing_behind(setup, link):
    appliance, hub, server = setup
    tables_before = {r[0] for r in hub.db.execute("select name from sqlite_master where type = 'table'")}
    assert HUB_TABLES <= tables_before
    fill_journal_fast(appliance, 25_000)
    assert "OK" in upload_in_namespace(link, appliance.data_dir, server.url)
    fill_journal_fast(appliance, 25_000, seed=2)
    for cut in (0.1, 0.25, 0.4, 0.15, 0.3):
        out = upload_in_namespace(link, appliance.data_dir, server.url, cut_after_s=cut)
        assert "FAILED" in out, out
        assert appliance.journal.acknowledged() == 25_000      # nothing pruned without an acknowledgement
    assert "OK 50000" in upload_in_namespace(link, appliance.data_dir, server.url)
    assert_exactly_once(hub, appliance)
    # no leftovers: no extra tables, no half batches, no stale sessions, no temporary files
    tables = {r[0] for r in hub.db.execute("select name from sqlite_master where type = 'table'")}
    assert tables == tables_before
    batches = hub.db.execute("select first_seq, last_seq, events from usage_batches order by first_seq").fetchall()
    assert batches[0] == (1, 25_000, 25_000) and batches[-1][1] == 50_000
    assert sum(b[2] for b in batches) == 50_000
    chain = dict(appliance.db.execute("select key, value from usage_chain").fetchall())
    assert (chain["chain_seq"], chain["chain_hash"]) == ("50000", hub.db.execute(
        "select last_batch_hash from device_usage_state").fetchone()[0])
    edge_tables = {r[0] for r in appliance.db.execute("select name from sqlite_master where type = 'table' and (name like '%tmp%' or name like '%temp%')")}
    assert edge_tables == set()
    wait_until(lambda: hub_sessions(server.port) == 0, 15, "the hub's connections from the cut uploads to close")
    # the repository's publish lock is one fixed file, not a leftover of the cuts
    permanent = {hub.data_dir / "repo" / ".lock"}
    stray = [p for d in (appliance.data_dir, hub.data_dir) for p in d.rglob(".*") if p.is_file() and p not in permanent]
    assert stray == []
