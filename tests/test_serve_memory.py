"""Memory of the serving processes: request threads share a small pool of SQLite
connections, a transaction never outlives its request, and ``edge serve`` runs
with glibc's per-thread malloc caches off (the command re-executes itself once)."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from edge_agent.appliance import POOL_CONNECTIONS, POOL_IDLE_CONNECTIONS, POOL_WAIT_S, Appliance
from edge_agent.config import EdgeConfig
from hub_sync.core.sqlite_db import transaction
from hub_sync.core.wsgi_server import MALLOC_TUNABLES, reexec_with_malloc_tunables


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def test_request_threads_share_a_bounded_pool_of_connections(appliance):
    in_use, peak, lock = 0, 0, threading.Lock()

    def request(_):
        nonlocal in_use, peak
        appliance.use_pool()
        try:
            appliance.db.execute("select count(*) from device_identity").fetchone()
            with lock:
                in_use += 1
                peak = max(peak, in_use)
            time.sleep(0.01)
            with lock:
                in_use -= 1
        finally:
            appliance.release()

    with ThreadPoolExecutor(24) as pool:
        list(pool.map(request, range(96)))
    assert peak == POOL_CONNECTIONS
    # still open: the fixture's own (main thread) connection and the idle ones kept for the next
    # requests (open file descriptors cannot tell: SQLite keeps a closed connection's until the
    # last connection to the file closes)
    assert len(appliance._all_dbs) <= 1 + POOL_IDLE_CONNECTIONS


def test_a_request_waits_only_briefly_when_slow_requests_hold_every_connection(appliance):
    holding, finish = threading.Barrier(POOL_CONNECTIONS + 1), threading.Event()

    def slow_upload():
        appliance.use_pool()
        appliance.db.execute("select 1").fetchone()
        holding.wait(10)
        finish.wait(30)
        appliance.release()

    def quick_request(result: list):
        appliance.use_pool()
        started = time.monotonic()
        result.append(appliance.db.execute("select count(*) from device_identity").fetchone()[0])
        result.append(time.monotonic() - started)
        appliance.release()

    slow = [threading.Thread(target=slow_upload) for _ in range(POOL_CONNECTIONS)]
    for thread in slow:
        thread.start()
    holding.wait(10)
    result: list = []
    quick = threading.Thread(target=quick_request, args=(result,))
    quick.start()
    quick.join(30)
    finish.set()
    for thread in slow:
        thread.join(30)
    assert result[0] >= 2  # answered: device_id and secret_key
    assert POOL_WAIT_S * 0.8 <= result[1] < POOL_WAIT_S + 2


def test_a_transaction_left_open_by_a_request_is_rolled_back_when_handed_back(appliance):
    def careless_request():
        appliance.use_pool()
        appliance.db.conn.execute("begin immediate")
        appliance.db["device_identity"].upsert({"key": "half-done", "value": "x"}, pk="key")
        appliance.release()

    def next_request():
        appliance.use_pool()
        with transaction(appliance.db):
            appliance.set_identity(after="ok")
        appliance.release()

    for job in (careless_request, next_request):
        thread = threading.Thread(target=job)
        thread.start()
        thread.join(30)
    assert appliance.identity("half-done") is None
    assert appliance.identity("after") == "ok"


def test_served_burst_is_answered_by_pooled_connections_with_malloc_caches_off(serve_edge, tmp_path):
    data = tmp_path / "data"
    Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1})).close()
    server = serve_edge(data)
    with httpx.Client(base_url=server.base, timeout=30) as http, ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: http.get("/api/v1/status").status_code, range(200)))
    assert answers == [200] * 200
    # the master's children: its worker, and the nginx front's master (its own program)
    (worker,) = [p for p in children(server.proc.pid) if b"edge_agent.cli" in Path(f"/proc/{p}/cmdline").read_bytes()]
    for pid in (server.proc.pid, worker):
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"GLIBC_TUNABLES={MALLOC_TUNABLES}".encode() in environ


def test_a_command_called_in_process_is_never_re_executed(monkeypatch):
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    reexec_with_malloc_tunables(("school-edge", "edge_agent/cli.py"))  # this is pytest: must return
    assert "GLIBC_TUNABLES" not in os.environ
