"""Usage ingest under faults, on SQLite and on a real PostgreSQL.

* The same batch given at the same moment to two threads, and to two processes with
  the hub open (as two ``hub serve`` on one database): stored once, counted once in the
  roll-ups, and both answered with a valid acknowledgement.
* PostgreSQL stopped (fast, or a crash) and started again in the middle of a stream of
  batches: the batch in flight gets ``DatabaseUnavailable`` (503 with Retry-After over
  HTTP), nothing is half stored, the retry stores it once; at the end no event is lost or
  doubled and the roll-ups equal a brute-force count over ``usage_events``.
* A revoked device's batch: refused with one clear line, nothing stored.
* A real slow link that gets cut: a network namespace for the appliance, a veth pair to
  the hub, ``tc tbf`` at 2 Mbit/s, ``ip link set … down`` mid-upload. After every cut
  and a successful resend the hub holds exactly the appliance's events (none missing,
  none twice), and nothing is left behind on either side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from hub_sync.core.errors import DatabaseUnavailable, DeviceError
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.core.processes import wait_until
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import batch_hash, encode_batch
from hub_sync.hub import Hub
from hub_sync.hub.app import create_hub_app
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry
from hub_sync.hub.rollup import DAY_MS, UTC_OFFSET_S
from fixtures.common import REPO, SCHOOL
from fixtures.link import NEEDS_LINK
from fixtures.postgres import PostgresCluster
from fixtures.servers import GunicornHub, free_port
from fixtures.usage import enroll, events, fill_journal_fast

LINK = [*NEEDS_LINK, pytest.mark.slow]  # each link test takes 7-40 s (a shaped link, cut again and again)
BATCH = 500


def link_test(fn):
    """The marks of a test over the shaped link."""
    for mark in LINK:
        fn = mark(fn)
    return fn


def chained_batches(signer, device_id: str, n_batches: int, size: int = BATCH, seed: int = 1) -> list[bytes]:
    """``n_batches`` signed batches of ``size`` events, each chained to the one before."""
    evs = events(n_batches * size, seed=seed)
    out, prev = [], ""
    for i in range(0, len(evs), size):
        payload = encode_batch(evs[i:i + size], device_id, SCHOOL, prev)
        out.append(seal("usage-batch", payload, signer))
        prev = batch_hash(payload)
    return out


@pytest.fixture
def devices(hub, tmp_path):
    """Two registered devices' signers."""
    signers = {}
    for name in ("edge-a", "edge-b"):
        signers[name] = generate_key(tmp_path / f"{name}.pem")
        Registry(hub.db).register(name, SCHOOL, public_key_dict(signers[name]))
    return signers


def assert_stored_once_and_rolled_up_once(hub, expected: dict[str, int]) -> None:
    """Every device's events 1..n held once; the day roll-ups equal a brute-force count."""
    for device_id, n in expected.items():
        got = hub.db.execute("select count(*), count(distinct seq), min(seq), max(seq) from usage_events"
                             " where device_id = ?", [device_id]).fetchone()
        assert tuple(got) == (n, n, 1, n), device_id
        state = hub.db.execute("select contiguous_seq from device_usage_state where device_id = ?", [device_id]).scalar()
        assert state == n
    brute = Counter()
    for device_id, ts in hub.db.execute("select device_id, ts from usage_events"):
        brute[(device_id, (round(ts * 1000) + UTC_OFFSET_S * 1000) // DAY_MS)] += 1
    rolled = {(d, s): e for d, s, e in hub.db.execute("select device_id, start, events from rollup where level = 'd' and dim = '*'")}
    assert rolled == dict(brute)
    for level in ("w", "m"):
        total = hub.db.execute("select coalesce(sum(events), 0) from rollup where level = ? and dim = '*'", [level]).scalar()
        assert total == sum(expected.values())


# -- the same batch twice at the same moment -------------------------------------------------
def test_same_batches_from_two_threads_at_once_are_stored_and_counted_once(hub, devices):
    batches = {d: chained_batches(s, d, 6, seed=i) for i, (d, s) in enumerate(devices.items())}
    acks: list = []
    errors: list = []

    def send(device_id: str, gate: threading.Barrier) -> None:
        ingest = UsageIngest(hub.db)
        try:
            for env in batches[device_id]:
                gate.wait(10)          # both threads hold the same batch: let them go together
                acks.append((device_id, ingest.ingest(env)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = []
    for device_id in devices:
        gate = threading.Barrier(2)
        threads += [threading.Thread(target=send, args=(device_id, gate)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for device_id in devices:
        mine = [a for d, a in acks if d == device_id]
        assert len(mine) == 12 and sum(a.stored for a in mine) == 6 * BATCH
        assert sorted(a.acked_seq for a in mine) == sorted([k * BATCH for k in range(1, 7)] * 2)  # both acks valid
        assert all(a.resend_from is None for a in mine)
    assert_stored_once_and_rolled_up_once(hub, {d: 6 * BATCH for d in devices})


SENDER_SCRIPT = """
import json, sys, time
from pathlib import Path
from hub_sync.hub import Hub
from hub_sync.hub.ingest import UsageIngest
hub = Hub.open(sys.argv[1], reserve_mb=1)
ingest = UsageIngest(hub.db)
envs = json.loads(Path(sys.argv[2]).read_text())
go = Path(sys.argv[3])
hub.db.scalar("select count(*) from devices")  # connected before the start
print("ready", flush=True)
for i, env in enumerate(envs):
    while not (go.parent / f"{go.name}-{i}").exists():
        time.sleep(0.0005)
    ack = ingest.ingest(env.encode())
    print(json.dumps([ack.acked_seq, ack.stored, ack.resend_from]), flush=True)
hub.close()
"""


def test_same_batches_from_two_processes_at_once_are_stored_and_counted_once(hub, devices, tmp_path):
    """Two processes with the hub open (as two ``hub serve`` on one database) given the same batches."""
    envs = chained_batches(devices["edge-a"], "edge-a", 8)
    (tmp_path / "envs.json").write_text(json.dumps([e.decode() for e in envs]))
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", SENDER_SCRIPT, str(hub.data_dir), str(tmp_path / "envs.json"), str(go)],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for i in range(len(envs)):
            (tmp_path / f"go-{i}").touch()  # both processes take batch i at the same moment
            answers = [json.loads(p.stdout.readline()) for p in procs]
            assert [a[0] for a in answers] == [(i + 1) * BATCH] * 2, answers   # two valid acks
            assert sorted(a[1] for a in answers) == [0, BATCH] and answers[0][2] is None
        for p in procs:
            assert p.wait(30) == 0, p.stderr.read()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
            p.stdout.close()
            p.stderr.close()
    assert_stored_once_and_rolled_up_once(hub, {"edge-a": 8 * BATCH})


# -- PostgreSQL restarted under a stream of batches ---------------------------------------------
@pytest.fixture(scope="module")
def durable_postgres():
    """A PostgreSQL of its own with durable settings (fsync, synchronous_commit on: the
    defaults). The suite's shared server trades durability for speed, and a crash there may
    lose a commit whose acknowledgement a device already holds; a hub's server must not."""
    cluster = PostgresCluster(settings=("max_connections=50",)).start()
    yield cluster
    cluster.destroy()


def ensure_running(cluster) -> None:
    """The session's server up again, whatever a failed test left (the next tests need it)."""
    if not (cluster.data / "postmaster.pid").exists():
        cluster.start()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_restarted_mid_stream_loses_and_doubles_nothing(durable_postgres, tmp_path, mode):
    postgres = durable_postgres
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=postgres.create_database())
    signers = {}
    for name in ("edge-a", "edge-b"):
        signers[name] = generate_key(tmp_path / f"{name}.pem")
        Registry(hub.db).register(name, SCHOOL, public_key_dict(signers[name]))
    n_batches = 30
    batches = {d: chained_batches(s, d, n_batches, size=300, seed=i) for i, (d, s) in enumerate(signers.items())}
    unavailable: list[DatabaseUnavailable] = []
    errors: list[Exception] = []
    progress = Counter()

    def stream(device_id: str) -> None:
        ingest = UsageIngest(hub.db)
        try:
            for env in batches[device_id]:
                for _ in range(200):       # a device retries what was not acknowledged
                    try:
                        ack = ingest.ingest(env)
                        break
                    except DatabaseUnavailable as exc:
                        unavailable.append(exc)
                        time.sleep(0.1)
                assert ack.resend_from is None
                progress[device_id] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=stream, args=(d,)) for d in signers]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: min(progress[d] for d in signers) >= 5, 60, "a few batches stored before the restart")
        postgres.stop(mode)        # the batches in flight lose their connection
        wait_until(lambda: unavailable, 30, "an ingest to meet the stopped database")
        time.sleep(0.5)
        postgres.start()
        for t in threads:
            t.join(120)
        assert errors == [] and progress == {d: n_batches for d in signers}
        assert unavailable and all(e.http_status == 503 for e in unavailable)
        assert_stored_once_and_rolled_up_once(hub, {d: n_batches * 300 for d in signers})
        batches_held = hub.db.execute("select count(*), sum(events) from usage_batches").fetchone()
        assert tuple(batches_held) == (2 * n_batches, 2 * n_batches * 300)  # no half batch recorded
    finally:
        ensure_running(postgres)
        hub.close()


def test_postgresql_down_answers_503_with_retry_after_and_the_retry_stores_once(durable_postgres, tmp_path):
    postgres = durable_postgres
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=postgres.create_database())
    signer = generate_key(tmp_path / "edge-a.pem")
    Registry(hub.db).register("edge-a", SCHOOL, public_key_dict(signer))
    envs = chained_batches(signer, "edge-a", 2)
    client = create_hub_app(hub).test_client()
    try:
        assert client.post("/api/v1/hub/usage", data=envs[0]).status_code == 200
        postgres.stop("immediate")
        down = client.post("/api/v1/hub/usage", data=envs[1])
        assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0
        assert down.get_json()["error"]["code"] == "database_unavailable"
        postgres.start()
        assert client.post("/api/v1/hub/usage", data=envs[1]).status_code == 200
        assert client.post("/api/v1/hub/usage", data=envs[1]).status_code == 200  # the ack was lost: again, nothing new
        assert_stored_once_and_rolled_up_once(hub, {"edge-a": 2 * BATCH})
    finally:
        ensure_running(postgres)
        hub.close()


# -- a revoked device ------------------------------------------------------------------------
def test_revoked_devices_batch_is_refused_with_one_clear_line_and_nothing_stored(hub, devices):
    envs = chained_batches(devices["edge-a"], "edge-a", 2)
    UsageIngest(hub.db).ingest(envs[0])
    Registry(hub.db).revoke("edge-a")
    with pytest.raises(DeviceError) as refused:
        UsageIngest(hub.db).ingest(envs[1])
    assert "\n" not in refused.value.en and "\n" not in refused.value.zh and "revoked" in refused.value.en
    response = create_hub_app(hub).test_client().post("/api/v1/hub/usage", data=envs[1])
    assert response.status_code == 403 and "revoked" in response.get_json()["error"]["message_en"]
    assert_stored_once_and_rolled_up_once(hub, {"edge-a": BATCH})

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
HUB_TABLES = {"alembic_version", "devices", "usage_events", "device_usage_state", "usage_batches"}


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


@link_test
def test_link_cut_mid_upload_then_restored_delivers_every_event_once(setup, link):
    appliance, hub, server = setup
    fill_journal_fast(appliance, 25_000)
    out = upload_in_namespace(link, appliance.data_dir, server.url, cut_after_s=0.3)
    assert "FAILED" in out and ("timed out" in out or "cannot reach" in out), out
    assert appliance.journal.acknowledged() == 0 and appliance.journal.pending_count() == 25_000
    assert "OK 25000" in upload_in_namespace(link, appliance.data_dir, server.url)
    assert_exactly_once(hub, appliance)


@link_test
def test_link_cut_many_times_in_a_row_leaves_nothing_behind(setup, link):
    appliance, hub, server = setup
    tables_before = set(hub.db.table_names())
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
    assert set(hub.db.table_names()) == tables_before
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
