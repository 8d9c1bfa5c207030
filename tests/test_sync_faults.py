"""Real link faults: the appliance runs in its own network namespace behind a veth
pair shaped with ``tc tbf`` to 2 Mbit/s (``link``, tests/fixtures/link.py); the link
is cut with ``ip link set down`` in the middle of an rsync transfer, the sync is
killed with SIGKILL, and a sync is cut a hundred times in a row."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures.common import REPO
from fixtures.link import NEEDS_LINK, Link
from fixtures.sync import CATALOGUE, SyncEnv
from hub_sync.core.processes import wait_until

pytestmark = [*NEEDS_LINK, pytest.mark.slow]  # every test here takes 15-40 s (a shaped link, cut again and again)

FLIP_UP_S, FLIP_DOWN_S = 1.3, 0.4  # during the hundred cuts the link flaps: up this long, then down this long


@pytest.fixture
def linked_env(tmp_path, link, hub_db):
    """A ``SyncEnv`` whose hub the appliance reaches only over ``link``, synced once with one lesson
    and a generated catalogue of thousands (hash bins)."""
    e = SyncEnv(tmp_path, host=link.hub_ip, catalogue=CATALOGUE, db_url=hub_db())
    # no rsync bandwidth cap: the shaped link is the limit; give up quickly on a dead link
    (e.app.data_dir / "settings.json").write_text(json.dumps({**json.loads((e.app.data_dir / "settings.json").read_text()),
                                                              "sync_bwlimit_kbps": 0, "sync_timeout_s": 3}))
    e.add("yuwen-1", "old-1", {"index.html": b"<h1>old</h1>"})
    e.publish()
    run = _sync(link, e)
    assert run.wait(60) == 0, run.stdout.read()
    run.stdout.close()
    yield e
    e.close()


def _sync(link: Link, linked_env: SyncEnv) -> subprocess.Popen:
    """The real ``school-edge edge sync`` inside the appliance's namespace."""
    return subprocess.Popen(link.inside(sys.executable, "-m", "edge_agent.cli", "edge", "sync", "--data",
                                        str(linked_env.app.data_dir), "--force"),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _staged_bytes(linked_env: SyncEnv) -> int:
    staging = linked_env.app.data_dir / "sync" / "staging"
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0


def _wait_staged(linked_env: SyncEnv, proc: subprocess.Popen, at_least: int, timeout_s: float = 60) -> None:
    def staged() -> bool:
        assert proc.poll() is None, proc.stdout.read()  # the sync ended before the transfer got that far
        return _staged_bytes(linked_env) >= at_least

    wait_until(staged, timeout_s, f"{at_least} bytes of the transfer staged")


def _received(output: str) -> int:
    match = re.search(r"files fetched \((\d+) bytes, rsync\)", output)
    assert match, output
    return int(match.group(1))


def _no_rsync_left(linked_env: SyncEnv) -> bool:
    found = subprocess.run(["pgrep", "-f", f"rsync.*{linked_env.app.data_dir}"], capture_output=True, text=True).stdout
    return not found.strip()


def test_link_cut_mid_transfer_keeps_the_old_catalogue_and_the_resume_does_not_start_over(linked_env, link):
    big = os.urandom(3 * 1024 * 1024)  # ~12 s at 2 Mbit/s
    linked_env.add("yuwen-1", "video-1", {"video.mp4": big})
    linked_env.publish()
    before = linked_env.state()
    proc = _sync(link, linked_env)
    _wait_staged(linked_env, proc, 1024 * 1024)
    link.down()
    assert proc.wait(60) == 1  # rsync gives up after sync_timeout_s without data
    output = proc.stdout.read()
    proc.stdout.close()
    assert "stalled" in output or "interrupted" in output
    assert linked_env.state() == before  # the complete old catalogue, nothing of the new one
    kept = _staged_bytes(linked_env)
    assert kept >= 1024 * 1024
    link.up()
    proc = _sync(link, linked_env)
    rc = proc.wait(90)
    output = proc.stdout.read()
    assert rc == 0, output
    proc.stdout.close()
    assert _received(output) < len(big) - kept + len(big) * 0.05, (output, kept)
    assert "video-1" in [r[0] for r in linked_env.state()[0]]
    assert linked_env.app.store.verify(linked_env.app.catalogue.get("video-1").files[0].sha256)
    assert _staged_bytes(linked_env) == 0


def test_sync_killed_mid_transfer_recovers_without_starting_over(linked_env, link):
    big = os.urandom(3 * 1024 * 1024)
    linked_env.add("yuwen-1", "video-2", {"video.mp4": big})
    linked_env.publish()
    before = linked_env.state()
    proc = _sync(link, linked_env)
    _wait_staged(linked_env, proc, 1024 * 1024)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    wait_until(lambda: _no_rsync_left(linked_env), 10, "the rsync child to end with the killed sync")
    assert linked_env.state() == before
    kept = _staged_bytes(linked_env)
    proc = _sync(link, linked_env)
    rc = proc.wait(90)
    output = proc.stdout.read()
    assert rc == 0, output
    proc.stdout.close()
    assert kept > 0 and _received(output) < len(big) - kept + len(big) * 0.05, (output, kept)
    assert "video-2" in [r[0] for r in linked_env.state()[0]]


DRIVER = r"""
import os, random, signal, sys, time
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.sync.content_sync import sync_content
data, cuts = sys.argv[1], int(sys.argv[2])
random.seed(4)
for i in range(cuts):
    pid = os.fork()
    if pid == 0:
        try:
            sync_content(Appliance.open(EdgeConfig.load(data)))
        finally:
            os._exit(0)
    time.sleep(random.uniform(0.05, 0.6))
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    time.sleep(0.05)
print("cuts done", flush=True)
"""


def test_a_hundred_cuts_in_a_row_leave_no_growing_leftovers(linked_env, link):
    big = os.urandom(1024 * 1024)
    linked_env.add("yuwen-1", "video-3", {"video.mp4": big})
    linked_env.add("yuwen-1", "sheet-3", {"sheet.pdf": os.urandom(20_000)})
    linked_env.publish()
    tables_before = sorted(r[0] for r in linked_env.app.db.execute("select name from sqlite_master"))
    driver = subprocess.Popen(link.inside(sys.executable, "-c", DRIVER, str(linked_env.app.data_dir), "100"),
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    flips = 0
    while driver.poll() is None:  # meanwhile, the link goes down and up too
        time.sleep(FLIP_UP_S)
        link.down()
        time.sleep(FLIP_DOWN_S)
        link.up()
        flips += 1
    out = driver.stdout.read()
    driver.stdout.close()
    assert driver.returncode == 0 and "cuts done" in out, out
    assert flips >= 10
    # each rsync gives up after sync_timeout_s (3 s) without data; 30 s leaves room for a loaded machine,
    # and a leftover that never ends still fails
    wait_until(lambda: _no_rsync_left(linked_env), 30, "no rsync left after the last cut")
    # the complete old catalogue, or (when cut after cut resumed far enough) the complete new one
    ids = linked_env.ids()
    assert ids in (["old-1"], ["old-1", "sheet-3", "video-3"]), ids
    assert all(linked_env.app.store.has(sha) for r in linked_env.state()[0] for _, sha in r[3])
    staged = _staged_bytes(linked_env)
    assert staged <= len(big) + 20_000  # at most the one partial copy of each wanted file
    proc = _sync(link, linked_env)
    assert proc.wait(90) == 0, proc.stdout.read()
    proc.stdout.close()
    after = linked_env.state()
    assert {"video-3", "sheet-3"} <= {r[0] for r in after[0]}
    data_dir = linked_env.app.data_dir
    # disk use is what the data needs: every stored blob is catalogued, nothing staged or half-written
    assert set(after[1]) == linked_env.app.catalogue.referenced_hashes()
    assert _staged_bytes(linked_env) == 0
    assert not list((data_dir / "content" / ".incoming").iterdir())
    assert not list((data_dir / "sync").glob(".files-from-*"))
    assert [p.name for p in (data_dir / "sync" / "index").iterdir()] == ["school-index.json"]  # the kept index only
    assert sorted(r[0] for r in linked_env.app.db.execute("select name from sqlite_master")) == tables_before
    assert linked_env.app.db.execute("select count(*) from sync_blobs").fetchone()[0] == len(after[1])
    assert _temporary_files(data_dir) == []  # python-tuf's, rsync's, the store's, atomic writes': none anywhere


# what an interrupted write leaves: python-tuf's "tmpXXXX", atomic_file's ".name.XXXX.tmp", rsync's
# ".name.XXXXXX", the rsync file list, an unfinished store write or staged download
_TEMP_NAME = re.compile(r"^(tmp|\.files-from-)|\.(tmp|new|part)$|^\..+\.[A-Za-z0-9]{6}$")


def _temporary_files(data_dir: Path) -> list[str]:
    """Every file under ``data_dir`` that is a leftover of an interrupted write, as relative paths."""
    found = []
    for path in data_dir.rglob("*"):
        rel = path.relative_to(data_dir)
        if path.is_file() and (_TEMP_NAME.search(path.name) or {".incoming", "staging"} & set(rel.parts[:-1])):
            found.append(str(rel))
    return sorted(found)
