"""Usage upload end to end: a real hub under gunicorn on loopback, a real appliance folder,
kill -9 of either side, and hubs that misbehave."""

from __future__ import annotations

import base64
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.sync.usage_sync import build_next_batch, upload_pending
from hub_sync.core.errors import DeviceError, LinkError, ReplayError, SignatureError
from hub_sync.core.processes import wait_until
from hub_sync.hub import Hub
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry
from fixtures.common import REPO
from fixtures.servers import GunicornHub, HubInFront, free_port
from fixtures.usage import classroom_acts, enroll, fill_journal_fast


@pytest.fixture
def served_hub(hub, tmp_path):
    server = GunicornHub(hub.data_dir, free_port()).start()
    yield server
    server.kill(signal.SIGTERM)


@pytest.fixture
def enrolled(appliance, hub):
    enroll(appliance, hub)
    return appliance


def hub_events(hub, device_id):
    return hub.db.execute("select seq from usage_events where device_id = ? order by seq", [device_id]).fetchall()


def journal_state(app):
    return (app.journal.acknowledged(), app.journal.pending_count(), app.journal.last_seq(),
            app.db.execute("select * from usage_chain order by key").fetchall(), app.clock.proven())


def test_events_are_uploaded_acknowledged_and_pruned(enrolled, hub, served_hub):
    enrolled.journal.append_many(classroom_acts(1_000))
    result = upload_pending(enrolled, served_hub.url)
    assert (result.batches, result.events_sent, result.acked_seq, result.pruned, result.pending) == (1, 1000, 1000, 1000, 0)
    assert [r[0] for r in hub_events(hub, enrolled.device_id)] == list(range(1, 1001))
    assert enrolled.journal.pending(0) == []
    assert abs(enrolled.clock.proven().timestamp() - time.time()) < 60  # the hub's signed time raised the clock
    enrolled.journal.append_many(classroom_acts(10, seed=2))
    again = upload_pending(enrolled, served_hub.url)
    assert (again.events_sent, again.acked_seq) == (10, 1010)
    assert len(hub_events(hub, enrolled.device_id)) == 1010


def test_nothing_pending_sends_nothing(enrolled, served_hub):
    result = upload_pending(enrolled, served_hub.url)
    assert (result.batches, result.bytes_sent, result.bytes_received) == (0, 0, 0)


def test_upload_proceeds_in_batches_each_chained_to_the_last(enrolled, hub, served_hub):
    enrolled.journal.append_many(classroom_acts(250))
    result = upload_pending(enrolled, served_hub.url, max_events=100)
    assert (result.batches, result.acked_seq) == (3, 250)
    chain = hub.db.execute("select first_seq, last_seq, prev_hash, batch_hash from usage_batches order by first_seq").fetchall()
    assert [(c[0], c[1]) for c in chain] == [(1, 100), (101, 200), (201, 250)]
    assert chain[0][2] == "" and chain[1][2] == chain[0][3] and chain[2][2] == chain[1][3]


def test_trusted_time_only_moves_forward(enrolled, hub):
    from edge_agent.sync.usage_sync import apply_ack
    from hub_sync.formats.usage_ack import UsageAck

    enrolled.clock.prove_timestamp(4_000_000_000.0)   # proved earlier, far ahead
    enrolled.journal.append("stu-1", "viewed", "res-1")
    apply_ack(enrolled, UsageAck(enrolled.device_id, 1, "h", "h", 1_760_000_000.0))
    assert enrolled.clock.proven().timestamp() == 4_000_000_000.0


def test_revoked_device_is_refused_and_nothing_is_pruned(enrolled, hub, served_hub, caplog):
    enrolled.journal.append_many(classroom_acts(20))
    Registry(hub.db).revoke(enrolled.device_id)
    before = journal_state(enrolled)
    with caplog.at_level(logging.WARNING), pytest.raises(DeviceError, match="revoked"):
        upload_pending(enrolled, served_hub.url)
    assert "revoked" in caplog.text
    assert journal_state(enrolled) == before and hub_events(hub, enrolled.device_id) == []


def hub_inside_ingest_transaction(hub) -> bool:
    """Whether a hub process is inside a writing transaction (SQLite: holds the write lock;
    PostgreSQL: a hub session has locked or written rows, so it has a transaction id)."""
    if hub.db.dialect == "postgresql":
        return bool(hub.db.scalar("select count(*) from pg_stat_activity where application_name = 'school-edge-hub'"
                                  " and backend_xid is not null and pid <> pg_backend_pid()"))
    probe = sqlite3.connect(hub.data_dir / "hub.db", timeout=0, isolation_level=None)
    try:
        probe.execute("begin immediate")
        probe.execute("rollback")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        probe.close()


@pytest.mark.slow  # 100,000 events, gunicorn killed and restarted: ~8 s
def test_hub_killed_mid_ingest_then_resend_stores_everything_exactly_once(enrolled, hub, served_hub):
    fill_journal_fast(enrolled, 100_000)
    errors: list[Exception] = []

    def send():
        try:
            upload_pending(enrolled, served_hub.url)
        except LinkError as exc:
            errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    wait_until(lambda: hub_inside_ingest_transaction(hub), 30, "the hub to be inside the ingest transaction",
               interval_s=0.002)
    served_hub.kill(signal.SIGKILL)
    sender.join(30)
    assert errors, "the upload should have been cut before the acknowledgement"
    assert UsageIngest(hub.db).count() == 0      # the half-done transaction left nothing
    assert enrolled.journal.acknowledged() == 0 and enrolled.journal.pending_count() == 100_000
    served_hub.start()
    result = upload_pending(enrolled, served_hub.url)
    assert result.acked_seq == 100_000 and enrolled.journal.pending_count() == 0
    counts = hub.db.execute("select count(*), count(distinct seq), min(seq), max(seq) from usage_events").fetchone()
    assert counts == (100_000, 100_000, 1, 100_000)


APPEND_SCRIPT = """
import sys
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
app = Appliance.open(EdgeConfig.load(sys.argv[1], {"free_space_reserve_mb": 1, "advertise": False}))
i = 0
while True:
    i += 1
    seq = app.journal.append("stu-%d" % (i % 40), "viewed", "res-yw-g1-u%d" % (i % 8), {"n": i})
    print(seq, flush=True)
"""


def test_every_acknowledged_append_survives_kill_9_of_the_appliance(config, tmp_path):
    Appliance.open(config).close()
    proc = subprocess.Popen([sys.executable, "-c", APPEND_SCRIPT, str(config.data_dir)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(int(line))
        if len(seen) >= 300:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(10)
    proc.stdout.close()
    app = Appliance.open(config)
    try:
        held = {e.seq for e in app.journal.pending(0, 1_000_000)}
        assert set(seen) <= held and seen == list(range(1, len(seen) + 1))
    finally:
        app.close()


UPLOAD_SCRIPT = """
import sys
from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.sync.usage_sync import upload_pending
app = Appliance.open(EdgeConfig.load(sys.argv[1], {"free_space_reserve_mb": 1, "advertise": False}))
print("sending", flush=True)
print(upload_pending(app, sys.argv[2], max_events=int(sys.argv[3])), flush=True)
"""


@pytest.mark.slow  # 60,000 events through a real hub: ~6 s
def test_appliance_killed_mid_sync_then_resend_stores_everything_exactly_once(enrolled, hub, served_hub):
    fill_journal_fast(enrolled, 60_000)
    proc = subprocess.Popen([sys.executable, "-c", UPLOAD_SCRIPT, str(enrolled.data_dir), served_hub.url, "5000"],
                            cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "sending"
    # some batches acknowledged, others on the way: kill -9 then
    wait_until(lambda: UsageIngest(hub.db).count() >= 15_000, 30, "15,000 events at the hub", interval_s=0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    acked = enrolled.journal.acknowledged()
    assert 0 < acked < 60_000
    result = upload_pending(enrolled, served_hub.url)
    assert result.acked_seq == 60_000
    assert hub.db.execute("select count(*), count(distinct seq), max(seq) from usage_events").fetchone() == (60_000, 60_000, 60_000)


class MisbehavingHub(HubInFront):
    """A hub in front of the real one that hangs, answers garbage, or tampers or replays acks."""

    def __init__(self, hub: Hub, mode: str) -> None:
        self.mode, self.first_ack = mode, None
        super().__init__(hub)

    def __call__(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if self.mode == "hang":
            time.sleep(2)
        if self.mode == "garbage":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"ok": tru']
        if self.mode == "html-error":
            start_response("502 Bad Gateway", [("Content-Type", "text/html")])
            return [b"<html>proxy error</html>"]
        answer = self.real.post("/api/v1/hub/usage", data=body).data
        if self.mode == "tamper":
            doc = json.loads(answer)
            payload = json.loads(base64.b64decode(doc["payload"]))
            payload["hub_time"] = 9_999_999_999.0
            doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
            answer = json.dumps(doc).encode()
        if self.mode == "replay":
            self.first_ack = self.first_ack or answer
            answer = self.first_ack
        start_response("200 OK", [("Content-Type", "application/json")])
        return [answer]


@pytest.mark.parametrize("mode, error, reason, logged", [
    ("garbage", LinkError, "not an acknowledgement", "acknowledgement refused"),
    ("html-error", LinkError, "unreadable body", "HTTP 502 with garbage"),
    ("hang", LinkError, "timed out", "timed out"),
    ("tamper", SignatureError, "not signed by the hub", "acknowledgement refused"),
])
def test_misbehaving_hub_is_refused_with_a_logged_reason_and_nothing_changes(enrolled, hub, mode, error, reason, logged, caplog):
    enrolled.journal.append_many(classroom_acts(50))
    fake = MisbehavingHub(hub, mode)
    before = journal_state(enrolled)
    try:
        with caplog.at_level(logging.WARNING), pytest.raises(error, match=reason):
            # a short timeout only where the hub hangs: the real hub behind the others may take
            # longer than that on a loaded machine (PostgreSQL's first batch)
            upload_pending(enrolled, fake.url, timeout=httpx.Timeout(0.5 if mode == "hang" else 10))
    finally:
        fake.close()
    assert journal_state(enrolled) == before
    assert logged in caplog.text


def test_replayed_acknowledgement_of_another_batch_is_refused(enrolled, hub):
    enrolled.journal.append_many(classroom_acts(50))
    fake = MisbehavingHub(hub, "replay")
    try:
        upload_pending(enrolled, fake.url)              # the first ack is genuine and recorded
        enrolled.journal.append_many(classroom_acts(5, seed=3))
        before = journal_state(enrolled)
        with pytest.raises(ReplayError, match="another device or batch"):
            upload_pending(enrolled, fake.url)          # the hub answers the old ack again
    finally:
        fake.close()
    assert journal_state(enrolled) == before


def test_batches_can_be_built_without_sending(enrolled):
    enrolled.journal.append_many(classroom_acts(30))
    batch = build_next_batch(enrolled)
    assert (batch.first_seq, batch.last_seq, batch.prev_hash) == (1, 30, "")
    assert enrolled.journal.pending_count() == 30
