"""A hub on PostgreSQL whose database server stops: the API answers 503 with Retry-After,
devices keep their events and send them exactly once when it is back, and the CLI says so
in one line."""

from __future__ import annotations

import signal
import subprocess

import httpx
import pytest

from edge_agent.sync.usage_sync import USAGE_PATH, build_next_batch, upload_pending
from fixtures.postgres import PostgresCluster
from fixtures.servers import GunicornHub, free_port
from fixtures.usage import classroom_acts, enroll
from hub_sync.core.errors import LinkError
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE
from hub_sync.hub import Hub


@pytest.fixture
def cluster():
    """A PostgreSQL server of this test's own: the test stops it."""
    c = PostgresCluster().start()
    yield c
    c.destroy()


@pytest.fixture
def pg_hub(cluster, tmp_path):
    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=cluster.create_database())
    yield hub
    hub.close()


def journal_state(app) -> tuple:
    return (app.journal.acknowledged(), app.journal.pending_count(), app.journal.last_seq(),
            app.db.execute("select * from usage_chain order by key").fetchall())


def test_usage_upload_while_the_database_is_down_is_kept_and_sent_once_when_it_is_back(cluster, pg_hub, appliance):
    enroll(appliance, pg_hub)
    server = GunicornHub(pg_hub.data_dir, free_port()).start()
    try:
        appliance.journal.append_many(classroom_acts(30))
        before = journal_state(appliance)
        pg_hub.close()
        cluster.stop()
        batch = build_next_batch(appliance)
        answer = httpx.post(server.url + USAGE_PATH, content=batch.envelope,
                            headers={"Content-Type": BATCH_CONTENT_TYPE}, timeout=30)
        assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0
        error = answer.json()["error"]
        assert error["code"] == "database_unavailable" and "database" in error["message_en"]
        assert "数据库" in error["message"]
        with pytest.raises(LinkError, match="database"):
            upload_pending(appliance, server.url)
        assert journal_state(appliance) == before  # nothing acknowledged, nothing pruned
        cluster.start()
        result = upload_pending(appliance, server.url)
        assert (result.events_sent, result.acked_seq, result.pending) == (30, 30, 0)
        seqs = [r[0] for r in pg_hub.db.execute("select seq from usage_events where device_id = ? order by seq",
                                                [appliance.device_id])]
        assert seqs == list(range(1, 31))
    finally:
        server.kill(signal.SIGTERM)


@pytest.mark.parametrize("verb", ["status", "devices", "backup", "restore"])
def test_hub_commands_with_the_database_down_print_one_line(cluster, pg_hub, tmp_path, verb):
    backup = tmp_path / "hub.backup"
    assert subprocess.run(["school-edge", "hub", "backup", "--data", str(pg_hub.data_dir), "--out", str(backup)],
                          capture_output=True, timeout=120).returncode == 0
    extra = {"backup": ["--out", str(tmp_path / "other.backup")], "restore": ["--from", str(backup), "--yes"]}.get(verb, [])
    pg_hub.close()
    cluster.stop()
    result = subprocess.run(["school-edge", "hub", verb, "--data", str(pg_hub.data_dir), *extra],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("错误 Error:"), result.stderr
    assert "cannot be used right now" in lines[0] or "cannot reach the database server" in lines[0]
    assert not (tmp_path / "other.backup").exists()
    cluster.start()
