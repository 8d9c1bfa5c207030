"""Several hub processes on one database (as several ``hub serve`` on one PostgreSQL): a
school's downlink messages are numbered in order with no gap or repeat, and concurrent
publishes leave one consistent TUF repository with every channel in it. (Two processes
ingesting the same usage batch: tests/test_usage_faults.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from fixtures.common import REPO, SCHOOL

from hub_sync.hub import Hub
from hub_sync.hub.publisher import publish, repo_for

PROCESSES = 3
EACH = 15
# each process: a fresh interpreter opening the hub, as a hub serve process does; it waits for the
# start file so that all of them act at the same moment
WORKER = """
import sys, time
from pathlib import Path
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.downlink import Downlink
from hub_sync.hub.publisher import add_files, publish

data, worker, what, go, school = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), sys.argv[5]
hub = Hub.open(data)
try:
    if what == "publish":
        page = hub.data_dir.parent / f"file-{worker}.html"
        page.write_text(f"<p>{worker}</p>", encoding="utf-8")
        files = add_files(hub, [page])
        Channels(hub.db).put_channel(f"ch-{worker}", f"频道{worker}", True)
        Channels(hub.db).put_resource(f"r-{worker}", f"ch-{worker}", {"title": f"资源{worker}"}, files)
    while not go.exists():
        time.sleep(0.01)
    if what == "publish":
        publish(hub)
    else:
        for i in range(%d):
            Downlink(hub.db).queue(school, "notice", {"subject": str(worker), "body": f"{worker}-{i}"})
finally:
    hub.close()
""" % EACH


def _run(what: str, hub: Hub, tmp_path) -> None:
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(hub.data_dir), str(w), what, str(go), SCHOOL], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for w in range(PROCESSES)]
    time.sleep(1.0)  # each has opened the hub by now (or is about to): then all at once
    go.touch()
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES, outputs


def test_processes_queueing_at_once_number_a_schools_messages_in_order(hub, tmp_path):
    _run("queue", hub, tmp_path)
    rows = hub.db.execute("select seq, payload from downlink_messages where school_code = ? order by seq", [SCHOOL]).fetchall()
    assert [r[0] for r in rows] == list(range(1, PROCESSES * EACH + 1))  # no gap, no repeat
    for worker in range(PROCESSES):  # each process's own messages kept their order
        mine = [json.loads(r[1])["body"] for r in rows if json.loads(r[1])["subject"] == str(worker)]
        assert mine == [f"{worker}-{i}" for i in range(EACH)]


def test_processes_publishing_at_once_leave_one_repository_with_every_channel(hub, tmp_path):
    _run("publish", hub, tmp_path)
    state = repo_for(hub).state()
    assert {f"ch-{w}" for w in range(PROCESSES)} <= set(state.channel_versions)
    publish(hub)  # one more publish from here sees nothing to change
    assert repo_for(hub).state().snapshot_version == state.snapshot_version
