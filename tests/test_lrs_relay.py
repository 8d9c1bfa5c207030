"""The hub relays ingested usage to a real LRS (ralph) as xAPI statements: batched, at
least once, idempotent; an LRS that is down, answers 500 or hangs gets a clear line and
moves no cursor; the credentials file must be private."""

from __future__ import annotations

import json
import os
import threading

import httpx
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from fixtures.common import SCHOOL
from fixtures.usage import events
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.core.processes import wait_until
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import batch_hash, encode_batch
from hub_sync.formats.xapi import statements as to_statements
from hub_sync.hub import lrs_relay
from hub_sync.hub.hub_settings import HubSettings
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.lrs_relay import LrsRelay
from hub_sync.hub.registry import Registry


def ingest(hub, tmp_path, device_id: str, n: int, seed: int = 1) -> list:
    """``n`` events of a new device through the real ingest path (signed batches of 400)."""
    signer = generate_key(tmp_path / f"{device_id}.pem")
    Registry(hub.db).register(device_id, SCHOOL, public_key_dict(signer))
    evs, prev = events(n, seed=seed), ""
    for i in range(0, n, 400):
        payload = encode_batch(evs[i:i + 400], device_id, SCHOOL, prev)
        UsageIngest(hub.db).ingest(seal("usage-batch", payload, signer))
        prev = batch_hash(payload)
    return evs


def run(hub, *args: str, input: str | None = None):
    return CliRunner().invoke(main, ["hub", *args[:2], "--data", str(hub.data_dir), *args[2:]], input=input)


def point_at(hub, url: str, *settings: tuple[str, str]) -> None:
    for key, value in (("hub_lrs_url", url), *settings):
        assert run(hub, "config", "set", key, value).exit_code == 0


def expected(hub_evs: dict[str, list]) -> dict[str, dict]:
    return {s["id"]: s for device, evs in hub_evs.items() for s in to_statements(evs, device, SCHOOL)}


def snapshot(hub) -> list:
    return [hub.db.execute("select * from lrs_cursor order by 1").fetchall(),
            hub.db.execute("select sent_total from lrs_status").fetchall()]


@pytest.mark.slow
def test_statements_arrive_batched_with_their_ids_and_verbs_and_a_repeat_adds_nothing(hub, tmp_path, lrs):
    sent = {"edge-a": ingest(hub, tmp_path, "edge-a", 700), "edge-b": ingest(hub, tmp_path, "edge-b", 350, seed=2)}
    point_at(hub, lrs.url, ("hub_lrs_batch", "500"))
    assert run(hub, "lrs", "credentials", "--user", lrs.username, input=f"{lrs.password}\n").exit_code == 0
    assert oct((hub.data_dir / "lrs-credentials").stat().st_mode & 0o777) == "0o600"

    result = run(hub, "lrs", "push")
    assert result.exit_code == 0, result.output
    assert "accepted 500/1050" in result.output and "accepted 1000/1050" in result.output  # three POSTs of <= 500
    assert "accepted 1050 statement(s)" in result.output
    held = {s["id"]: s for s in lrs.statements()}
    want = expected(sent)
    assert set(held) == set(want) and len(held) == 1050
    for sid, st in want.items():
        assert held[sid]["verb"]["id"] == st["verb"]["id"]
        assert held[sid]["object"]["id"] == st["object"]["id"]
        assert held[sid]["actor"]["account"] == st["actor"]["account"]
    assert {s["verb"]["id"] for s in held.values()} >= {"http://adlnet.gov/expapi/verbs/answered",
                                                        "http://adlnet.gov/expapi/verbs/completed"}
    assert LrsRelay(hub).cursors() == {"edge-a": 700, "edge-b": 350} and LrsRelay(hub).pending() == 0

    again = run(hub, "lrs", "push")  # nothing pending: nothing sent
    assert again.exit_code == 0 and "accepted 0 statement(s)" in again.output
    hub.db.execute("delete from lrs_cursor")  # as if every batch's acceptance had been lost: all sent again
    assert run(hub, "lrs", "push").exit_code == 0
    assert len(lrs.statements()) == 1050  # the same ids: the LRS stored nothing twice

    status = run(hub, "lrs", "status")
    assert status.exit_code == 0 and lrs.url in status.output and "pending:       0" in status.output


@pytest.mark.slow
def test_an_lrs_down_for_a_while_loses_nothing_and_duplicates_nothing(hub, tmp_path, lrs, caplog):
    first = ingest(hub, tmp_path, "edge-a", 300)
    point_at(hub, lrs.url, ("hub_lrs_attempts", "1"), ("hub_lrs_batch", "100"))
    run(hub, "lrs", "credentials", "--user", lrs.username, "--password", "not-the-password")
    refused = run(hub, "lrs", "push")  # a wrong password is not retried: one line, nothing moved
    assert refused.exit_code == 1 and "refused the credentials (401)" in refused.output
    assert LrsRelay(hub).cursors() == {} and lrs.statements() == []
    run(hub, "lrs", "credentials", "--user", lrs.username, "--password", lrs.password)
    lrs.stop()
    down = run(hub, "lrs", "push")
    assert down.exit_code == 1 and "cannot reach" in down.output and "Traceback" not in down.output
    assert LrsRelay(hub).cursors() == {} and LrsRelay(hub).pending() == 300
    assert "cannot reach" in run(hub, "lrs", "status").output  # the last error is shown
    lrs.start()
    assert run(hub, "lrs", "push").exit_code == 0
    assert len(lrs.statements()) == 300

    # down in the middle of a pass: the retries' backoff carries the pass over the outage
    more = ingest(hub, tmp_path, "edge-b", 250, seed=3)
    HubSettings(hub.db).set("hub_lrs_attempts", "8")
    lrs.stop()
    outcome: list = []
    pusher = threading.Thread(target=lambda: outcome.append(_push(hub)), name="push")
    pusher.start()
    try:  # the LRS comes back only once an attempt of this pass failed and the pass is in its backoff
        wait_until(lambda: "Retrying" in caplog.text and "cannot reach" in caplog.text, 20, "a failed attempt")
    finally:
        lrs.start()
        pusher.join(120)
    assert outcome == [250]
    held = lrs.statements()
    assert len(held) == 550 and {s["id"] for s in held} == set(expected({"edge-a": first, "edge-b": more}))
    assert LrsRelay(hub).cursors() == {"edge-a": 300, "edge-b": 250}


def _push(hub):
    from hub_sync.hub.hub import Hub

    other = Hub.open(hub.data_dir)  # another connection, as another process would have
    try:
        return LrsRelay(other).push()
    finally:
        other.close()


def test_an_lrs_answering_500_is_retried_then_reported_and_no_cursor_moves(hub, tmp_path, failing_lrs):
    ingest(hub, tmp_path, "edge-a", 120)
    point_at(hub, failing_lrs.url, ("hub_lrs_attempts", "2"))
    before = snapshot(hub)
    result = run(hub, "lrs", "push")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert "answered 500" in line and "after 2 attempt(s)" in line and "sends it again" in line
    assert failing_lrs.requests == 2  # retried once, with a backoff, then given up
    assert snapshot(hub) == before and LrsRelay(hub).pending() == 120


def test_an_lrs_that_never_answers_times_out_and_no_cursor_moves(hub, tmp_path, silent_lrs):
    ingest(hub, tmp_path, "edge-a", 50)
    point_at(hub, silent_lrs.url, ("hub_lrs_attempts", "1"), ("hub_lrs_timeout_s", "1"))
    before = snapshot(hub)
    result = run(hub, "lrs", "push")
    assert result.exit_code == 1 and "within 1 s (timeout)" in result.output, result.output
    assert silent_lrs.accepted == 1
    assert snapshot(hub) == before and LrsRelay(hub).pending() == 50


def test_credentials_readable_by_others_are_refused_and_nothing_is_sent(hub, tmp_path, failing_lrs):
    ingest(hub, tmp_path, "edge-a", 10)
    point_at(hub, failing_lrs.url)
    creds = hub.data_dir / "lrs-credentials"
    creds.write_text("county-hub:secret\n")
    os.chmod(creds, 0o644)
    result = run(hub, "lrs", "push")
    assert result.exit_code == 1 and f"chmod 600 {creds}" in result.output
    assert len(result.output.strip().splitlines()) == 2  # the pending line, then one error line
    assert failing_lrs.requests == 0 and snapshot(hub)[0] == [] and creds.stat().st_mode & 0o777 == 0o644


def test_without_an_lrs_set_push_says_how_to_set_one(hub):
    result = run(hub, "lrs", "push")
    assert result.exit_code == 1 and "hub config set hub_lrs_url" in result.output


@pytest.mark.parametrize("key,value,says", [
    ("hub_lrs_url", "ftp://lrs.example.org/", "http(s)"),
    ("hub_lrs_url", "lrs.example.org", "http(s)"),
    ("hub_lrs_batch", "0", "from 1 to 5000"),
    ("hub_lrs_batch", "many", "from 1 to 5000"),
    ("hub_lrs_colour", "blue", "no hub setting named hub_lrs_colour"),
])
def test_a_wrong_setting_is_refused_and_the_stored_one_kept(hub, key, value, says):
    assert run(hub, "config", "set", "hub_lrs_url", "https://lrs.example.org/xAPI").exit_code == 0
    result = run(hub, "config", "set", key, value)
    assert result.exit_code == 1 and says in result.output and "Traceback" not in result.output
    lrs_settings = {k: v for k, v in HubSettings(hub.db).all().items() if k.startswith("hub_lrs_")}
    assert lrs_settings == {"hub_lrs_url": "https://lrs.example.org/xAPI/", "hub_lrs_batch": 500,
                                         "hub_lrs_interval_min": 10, "hub_lrs_first_pass_s": 30, "hub_lrs_timeout_s": 30, "hub_lrs_attempts": 5}
    shown = run(hub, "config", "show")
    assert "https://lrs.example.org/xAPI/" in shown.output


@pytest.mark.slow
def test_a_differing_statement_under_one_id_costs_only_that_statement(hub, tmp_path, lrs):
    evs = ingest(hub, tmp_path, "edge-a", 20)
    point_at(hub, lrs.url)
    run(hub, "lrs", "credentials", "--user", lrs.username, "--password", lrs.password)
    ours = to_statements(evs, "edge-a", SCHOOL)
    other = {**ours[5], "verb": {"id": "http://adlnet.gov/expapi/verbs/voided"}}  # same id, another statement
    r = httpx.post(lrs.url + "statements", auth=(lrs.username, lrs.password), content=json.dumps([other]),
                   headers={"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 200
    assert run(hub, "lrs", "push").exit_code == 0  # the batch's 409, then one by one: that one's 409 is "held"
    held = {s["id"]: s for s in lrs.statements()}
    assert set(held) == {s["id"] for s in ours} and LrsRelay(hub).pending() == 0


@pytest.mark.slow
def test_the_hub_servers_job_relays_on_its_own(hub, tmp_path, lrs):
    ingest(hub, tmp_path, "edge-a", 30)
    point_at(hub, lrs.url, ("hub_lrs_first_pass_s", "0"))
    run(hub, "lrs", "credentials", "--user", lrs.username, "--password", lrs.password)
    stop = lrs_relay.relay_job(hub)
    try:
        wait_until(lambda: LrsRelay(hub).pending() == 0, 30, "the job to relay the usage")
    finally:
        stop()
    assert len(lrs.statements()) == 30


@pytest.mark.slow
def test_hub_serve_runs_the_relay(tmp_path, lrs, hub_db):
    from fixtures.servers import ServerProcess, free_port
    from hub_sync.hub.hub import Hub

    hub = Hub.init(tmp_path / "hub", reserve_mb=1, db_url=hub_db())
    try:
        ingest(hub, tmp_path, "edge-a", 40)
        point_at(hub, lrs.url, ("hub_lrs_first_pass_s", "1"))
        run(hub, "lrs", "credentials", "--user", lrs.username, "--password", lrs.password)
    finally:
        hub.close()
    port = free_port()
    server = ServerProcess(["hub", "serve", "--data", str(tmp_path / "hub"), "--port", str(port), "--rsync-port", "0"],
                           port).wait("/api/v1/hub/status")
    try:
        wait_until(lambda: len(lrs.statements()) == 40, 30, "hub serve's job to relay the usage")
    finally:
        assert server.stop() == 0, server.output()
    status = run(hub, "lrs", "status")
    assert "pending:       0" in status.output and "accepted:      40" in status.output


@pytest.mark.slow
def test_usage_from_a_real_appliance_through_the_hubs_front_reaches_the_lrs_with_the_exports_ids(tmp_path, lrs, hub_db):
    from edge_agent.sync.usage_sync import upload_pending
    from fixtures.sync import SyncEnv

    env = SyncEnv(tmp_path, db_url=hub_db())  # hub serve (nginx in front) and an appliance provisioned from it
    try:
        env.app.journal.append_many([("stu-1", "viewed", "res-1", {}), ("stu-1", "completed", "res-1", {"s": 30}),
                                     ("stu-2", "answered", "res-2", {"correct": False, "answer": "C"}),
                                     ("stu-2", "submitted", "hw-7", {"score": 90})])
        exported = tmp_path / "export.json"
        assert CliRunner().invoke(main, ["edge", "export-xapi", "--data", str(env.app.data_dir),
                                         "--out", str(exported)]).exit_code == 0
        env.sync()  # the first contact enrolls the device
        assert upload_pending(env.app).acked_seq == 4  # signed batches over HTTP, through nginx, acknowledged
        point_at(env.hub, lrs.url)
        run(env.hub, "lrs", "credentials", "--user", lrs.username, "--password", lrs.password)
        assert run(env.hub, "lrs", "push").exit_code == 0
        held = {s["id"]: s for s in lrs.statements()}
        want = {s["id"]: s for s in json.loads(exported.read_text("utf-8"))}
        assert set(held) == set(want)  # the appliance's export and the hub's relay name each event alike
        for sid, st in want.items():
            assert (held[sid]["verb"]["id"], held[sid]["object"]["id"], held[sid].get("result")) == \
                (st["verb"]["id"], st["object"]["id"], st.get("result"))
        assert {s["verb"]["id"] for s in held.values()} == {
            "http://adlnet.gov/expapi/verbs/experienced", "http://adlnet.gov/expapi/verbs/completed",
            "http://adlnet.gov/expapi/verbs/answered", "https://w3id.org/school-edge/xapi/verbs/submitted"}
    finally:
        env.close()


def test_a_push_while_another_pass_runs_sends_nothing_and_says_so(hub, tmp_path, failing_lrs):
    ingest(hub, tmp_path, "edge-a", 10)
    point_at(hub, failing_lrs.url)
    with LrsRelay(hub)._locked():  # as hub serve's job (maybe another process, on PostgreSQL another box) holds it
        result = run(hub, "lrs", "push")
    assert result.exit_code == 1 and "another relay pass is running" in result.output
    assert failing_lrs.requests == 0 and snapshot(hub)[0] == []
