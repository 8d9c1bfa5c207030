"""A county hub relays its schools' usage to a province hub (both real hubs under gunicorn,
on SQLite and on PostgreSQL): device envelopes untouched and verified end to end against
the keys of the county's signed roster, exactly once at the province, resumable; the
province reports per county, school and teaching point. Faults: a relay cut mid-transfer
and resumed, a replayed old bundle, a batch of a device the county never registered, a
device the county revoked, a bundle signed by a key the province does not know: nothing
lost, nothing counted twice, each refusal one clear line."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import threading
from datetime import date
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edge_agent.cli import main
from fixtures.fleet import PASSWORD
from fixtures.servers import GunicornHub, free_port
from fixtures.usage import events
from hub_sync.core.keys import generate_key, load_signer, public_key_dict
from hub_sync.formats.envelope import seal
from hub_sync.formats.relay_bundle import (BUNDLE_CONTENT_TYPE, BUNDLE_KIND, RECEIPT_KIND, ROSTER_CONTENT_TYPE, Bundle,
                                           decode_receipt, encode_bundle)
from hub_sync.formats.envelope import open_envelope
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE, batch_hash, encode_batch
from hub_sync.hub import Hub
from hub_sync.hub.accounts import Accounts
from hub_sync.hub.hub_settings import HubSettings
from hub_sync.hub.registry import Registry
from hub_sync.hub.relay_keys import relay_key_path
from hub_sync.hub.relay_push import RelayPush, summary
from hub_sync.hub.reports import Period, Reports, Scope

COUNTY = "440102"
SCHOOLS = ("4401020301", "4401020302")
PERIOD = Period(date(2025, 10, 1), date(2025, 10, 31))  # fixtures.usage's events start 2025-10-09


class Device:
    """A registered device at the county that signs contiguous, chained usage batches."""

    def __init__(self, world: "World", device_id: str, school: str) -> None:
        self.world, self.device_id, self.school = world, device_id, school
        self.signer = generate_key(world.tmp / f"{device_id}.pem")
        self.next_seq, self.prev = 1, ""
        self.seed = sum(map(ord, device_id))

    def batch(self, n: int) -> bytes:
        evs = events(n, first_seq=self.next_seq, seed=self.seed + self.next_seq)
        payload = encode_batch(evs, self.device_id, self.school, self.prev)
        self.next_seq, self.prev = self.next_seq + n, batch_hash(payload)
        return seal("usage-batch", payload, self.signer)

    def upload(self, n: int) -> bytes:
        """A batch of ``n`` events through the county's HTTP API (as the appliance sends it)."""
        envelope = self.batch(n)
        r = httpx.post(self.world.county_server.url + "/api/v1/hub/usage", content=envelope,
                       headers={"Content-Type": BATCH_CONTENT_TYPE}, timeout=30)
        assert r.status_code == 200, r.text
        return envelope


class World:
    """A county hub and a province hub, each under gunicorn, the county registered at the province."""

    def __init__(self, tmp: Path, db_url) -> None:
        self.tmp = tmp
        self.county = Hub.init(tmp / "county", reserve_mb=1, db_url=db_url())
        self.province = Hub.init(tmp / "province", reserve_mb=1, db_url=db_url())
        for hub in (self.county, self.province):
            assert self.cli(hub, "relay", "keygen").exit_code == 0
        (tmp / "county-relay.pub").write_text(self.cli(self.county, "relay", "key").output)
        (tmp / "province-relay.pub").write_text(self.cli(self.province, "relay", "key").output)
        self.county_server = GunicornHub(self.county.data_dir, free_port()).start()
        self.province_server = GunicornHub(self.province.data_dir, free_port()).start()
        out = self.cli(self.province, "county", "add", "--id", COUNTY, "--name", "越秀区", "--key", str(tmp / "county-relay.pub"))
        assert out.exit_code == 0 and f"County registered: {COUNTY}" in out.output, out.output
        assert self.cli(self.county, "relay", "trust", "--key", str(tmp / "province-relay.pub")).exit_code == 0
        self.point_at(self.province_server.url)
        for key, value in (("county_code", COUNTY), ("relay_bundle_kb", "16"), ("relay_attempts", "2")):
            HubSettings(self.county.db).set(key, value)
        self.devices: list[Device] = []

    def cli(self, hub: Hub, *args: str):
        return CliRunner().invoke(main, ["hub", *args[:2], "--data", str(hub.data_dir), *args[2:]])

    def point_at(self, url: str) -> None:
        HubSettings(self.county.db).set("province_url", url)  # what 'hub config set province_url' stores

    def device(self, device_id: str, school: str) -> Device:
        d = Device(self, device_id, school)
        Registry(self.county.db).register(device_id, school, public_key_dict(d.signer), school_name=f"学校{school[-2:]}")
        self.devices.append(d)
        return d

    def push(self):
        return self.cli(self.county, "relay", "push")

    def post(self, path: str, body: bytes, ctype: str = BUNDLE_CONTENT_TYPE) -> httpx.Response:
        return httpx.post(self.province_server.url + path, content=body, headers={"Content-Type": ctype}, timeout=30)

    def county_signer(self):
        return load_signer(relay_key_path(self.county.data_dir))

    def relay(self, bundle: Bundle) -> httpx.Response:
        """Post ``bundle`` to the province as the county would, signed with the county's relay key."""
        return self.post("/api/v1/province/relay", seal(BUNDLE_KIND, encode_bundle(bundle), self.county_signer()))

    def receipt(self, answer: httpx.Response):
        """The province's receipt in ``answer``, verified against the province's relay key."""
        key = load_signer(relay_key_path(self.province.data_dir)).public_key
        return decode_receipt(open_envelope(answer.content, RECEIPT_KIND, [key])[0])

    def close(self) -> None:
        for server in (self.county_server, self.province_server):
            server.kill(signal.SIGTERM)
        self.county.close()
        self.province.close()


def counts(hub: Hub) -> dict:
    """Everything the relay may change, to show that a refusal or a replay changed nothing."""
    db = hub.db
    return {"events": db.query("select device_id, count(*) as n from usage_events group by device_id order by device_id"),
            "state": db.query("select device_id, contiguous_seq from device_usage_state order by device_id"),
            "devices": db.query("select device_id, status, county from devices order by device_id"),
            "rollup": db.scalar("select coalesce(sum(events), 0) from rollup where level = 'd' and dim = '*'"),
            "bundles": db.query("select county, relay_seq, accepted, refused from relay_bundles order by 1, 2")}


def totals(hub: Hub, scope: Scope) -> dict:
    return Reports(hub.db).totals(PERIOD, scope)


@contextlib.contextmanager
def console(hub: Hub, url: str):
    """An httpx client logged in to ``hub``'s console as a new county-level viewer."""
    Accounts(hub.db).add("bureau", "viewer", PASSWORD)
    with httpx.Client(base_url=url, timeout=30) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/login").text).group(1)
        answer = client.post("/console/login", data={"name": "bureau", "password": PASSWORD, "csrf_token": token,
                                                     "next": "/console/"})
        assert answer.status_code == 302, answer.text
        yield client


@pytest.fixture
def world(tmp_path, hub_db):
    w = World(tmp_path, hub_db)
    yield w
    w.close()


def test_the_province_counts_what_the_county_counts_per_school_and_county(world):
    a = world.device("edge-a1", SCHOOLS[0])
    b = world.device("edge-a2", SCHOOLS[0])
    c = world.device("edge-b1", SCHOOLS[1])
    for d, sizes in ((a, (300, 200, 250)), (b, (120,)), (c, (400, 80))):
        for n in sizes:
            d.upload(n)
    out = world.push()
    assert out.exit_code == 0, out.output
    assert "Roster: 新增 added 3" in out.output
    bundles = world.county.db.scalar("select count(*) from relay_sent where acked_at is not null")
    assert bundles >= 2  # 16 KB bundles: the six batches do not fit in one
    assert f"Done: {bundles} 个转发包 bundle(s), 6 个数据包被接收 batch(es) accepted" in out.output

    # every event once, with the county's device keys; the same roll-ups, one level up
    assert counts(world.province)["events"] == counts(world.county)["events"]
    assert counts(world.province)["rollup"] == counts(world.county)["rollup"] == 1350
    for school in SCHOOLS:
        assert totals(world.province, Scope("school", school)) == totals(world.county, Scope("school", school))
    assert totals(world.province, Scope(county=COUNTY)) == totals(world.county, Scope()) == totals(world.province, Scope())
    assert totals(world.province, Scope(county="440103"))["events"] == 0
    assert Reports(world.province.db).counties() == [(COUNTY, "越秀区")]
    assert [s for s, _ in Reports(world.province.db).schools(COUNTY)] == list(SCHOOLS)

    # the province bureau's report page: the whole province, then the county as a scope
    with console(world.province, world.province_server.url) as bureau:
        page = bureau.get("/console/reports", params={"first": "2025-10-01", "last": "2025-10-31"})
        assert page.status_code == 200 and f'<option value="{COUNTY}">越秀区 ({COUNTY})</option>' in page.text
        assert "全省" in page.text
        scoped = bureau.get("/console/reports", params={"first": "2025-10-01", "last": "2025-10-31", "county": COUNTY})
        assert scoped.status_code == 200 and f'<option value="{COUNTY}" selected>' in scoped.text
        assert all(f'<option value="{s}"' in scoped.text for s in SCHOOLS)
        csv = bureau.get("/console/reports/totals.csv", params={"first": "2025-10-01", "last": "2025-10-31",
                                                                "county": COUNTY})
        assert csv.status_code == 200 and str(totals(world.county, Scope())["events"]) in csv.text

    listed = world.cli(world.province, "county", "list")
    assert COUNTY in listed.output and "devices    3" in listed.output and "schools    2" in listed.output
    status = world.cli(world.county, "relay", "status")
    assert "waiting:       0" in status.output and f"{bundles}/{bundles}" in status.output

    # nothing new: a pass sends the roster only and changes nothing
    before = counts(world.province)
    again = world.push()
    assert again.exit_code == 0 and "Done: 0 个转发包" in again.output
    assert counts(world.province) == before
    # more usage: only the new batch goes up
    c.upload(50)
    assert world.push().exit_code == 0
    assert totals(world.province, Scope("school", SCHOOLS[1])) == totals(world.county, Scope("school", SCHOOLS[1]))


class CutLink:
    """A TCP relay in front of the province that cuts the first relay request: ``half`` closes
    the connection when half its body has arrived (the province never sees it), ``answer``
    forwards it whole and closes instead of passing the province's receipt back."""

    def __init__(self, target: str, mode: str) -> None:
        self.target, self.mode, self.cuts = target, mode, 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.threads = [threading.Thread(target=self._serve, name="cut-link")]
        self.threads[0].start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.threads.append(threading.Thread(target=self._one, args=(conn,), name="cut-link-conn"))
            self.threads[-1].start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            relay = b"/province/relay" in head.split(b"\r\n")[0]
            cut = relay and self.cuts == 0
            while len(body) < (length // 2 if cut and self.mode == "half" else length):
                body += conn.recv(65536)
            if cut and self.mode == "half":
                self.cuts += 1
                return  # closed mid-upload
            path = head.split(b" ")[1].decode()
            r = httpx.post(self.target + path, content=body[:length], headers={"Content-Type": "application/json"}, timeout=30)
            if cut:
                self.cuts += 1
                return  # the province took it; its receipt is lost on the way back
            conn.sendall(b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (r.status_code, len(r.content))
                         + r.content)

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for thread in self.threads:
            thread.join(10)


@pytest.mark.parametrize("mode", ["half", "answer"])
def test_a_relay_cut_mid_transfer_resumes_and_counts_once(world, mode):
    a = world.device("edge-a1", SCHOOLS[0])
    for n in (300, 300, 300):
        a.upload(n)
    link = CutLink(world.province_server.url, mode)
    world.point_at(link.url)
    HubSettings(world.county.db).set("relay_attempts", "1")
    try:
        cut = world.push()
    finally:
        link.close()
    assert cut.exit_code != 0 and link.cuts == 1
    assert "the province did not answer" in cut.output and "sent next time" in cut.output
    assert world.county.db.scalar("select count(*) from relay_sent where acked_at is null") == 1  # kept, to resend
    held = world.province.db.scalar("select count(*) from relay_bundles")
    assert held == (1 if mode == "answer" else 0)

    # the province stopped too (a power cut): the next pass fails, changes nothing
    world.point_at(world.province_server.url)
    world.province_server.kill()
    down = world.push()
    assert down.exit_code != 0 and "the province did not answer" in down.output
    world.province_server.start()

    resumed = world.push()
    assert resumed.exit_code == 0, resumed.output
    assert counts(world.province)["events"] == counts(world.county)["events"] == [{"device_id": "edge-a1", "n": 900}]
    assert counts(world.province)["rollup"] == 900
    assert totals(world.province, Scope(county=COUNTY)) == totals(world.county, Scope())


def test_an_old_bundle_replayed_changes_nothing(world):
    a = world.device("edge-a1", SCHOOLS[0])
    for n in (300, 300):
        a.upload(n)
    first = RelayPush(world.county).next_bundle().bundle  # built (and kept until its receipt), then sent by the pass
    assert world.push().exit_code == 0
    receipt = bytes(world.county.db.scalar("select receipt from relay_sent where relay_seq = 1"))
    assert world.county.db.scalar("select count(*) from relay_outbox") == 0  # acknowledged: no second copy kept
    before = counts(world.province)

    r = world.post("/api/v1/province/relay", first)
    assert r.status_code == 200 and r.headers["X-Relay-Already"] == "1"
    assert r.content == receipt  # the same answer, word for word
    assert counts(world.province) == before
    lines = [line for line in world.province_server.output().splitlines() if "already received" in line]
    assert len(lines) == 1 and f"county {COUNTY} bundle 1 already received; nothing changed" in lines[0]

    # other content under a number already taken: refused, one line, nothing changed
    batch = a.batch(10)
    r = world.relay(Bundle(COUNTY, 1, (1, 1), [batch], summary([batch])))
    assert r.status_code == 409 and "was received before with other content" in r.json()["error"]["message_en"]
    assert counts(world.province) == before


def test_a_batch_of_a_device_the_county_never_registered_is_refused_the_rest_taken(world):
    a = world.device("edge-a1", SCHOOLS[0])
    a.upload(200)
    assert world.push().exit_code == 0
    before = counts(world.province)
    stranger = Device(world, "edge-x9", SCHOOLS[0])  # a key of its own, never in the county's registry
    good, bad = a.batch(100), stranger.batch(100)
    bundle = Bundle(COUNTY, 2, (99, 100), [bad, good], summary([bad, good]))
    r = world.relay(bundle)
    assert r.status_code == 200, r.text
    receipt = world.receipt(r)
    assert receipt.accepted == 1 and len(receipt.refused) == 1
    assert receipt.refused[0].line() == (f"edge-x9 1-100: 设备 edge-x9 不在县 {COUNTY} 登记的设备名单中，拒收 / "
                                         f"device edge-x9 was never registered by county {COUNTY}; batch refused")
    after = counts(world.province)
    assert after["events"] == [{"device_id": "edge-a1", "n": 300}]  # the good batch taken, nothing of the stranger
    assert after["devices"] == before["devices"]
    assert [line for line in world.province_server.output().splitlines() if "edge-x9 1-100" in line].__len__() == 1


def test_a_device_the_county_revoked_keeps_what_it_sent_before_and_its_later_batches_are_refused(world):
    a = world.device("edge-a1", SCHOOLS[0])
    b = world.device("edge-b1", SCHOOLS[1])
    a.upload(200)
    b.upload(200)
    assert world.push().exit_code == 0
    old_roster = seal("device-roster", json.dumps({"county": COUNTY, "issued_at": 1.0, "devices": []}).encode(),
                      world.county_signer())
    a.upload(100)  # stored at the county before it revoked the device, relayed after: usage like any other
    b.upload(100)
    Registry(world.county.db).revoke("edge-a1")

    out = world.push()
    assert out.exit_code == 0, out.output
    assert "Roster: 新增 added 0, 吊销 revoked 1" in out.output
    assert [line for line in out.output.splitlines() if "refused:" in line] == []
    after = counts(world.province)
    # the province counts what the county counts: nothing the county took before the revocation is lost
    assert after["events"] == [{"device_id": "edge-a1", "n": 300}, {"device_id": "edge-b1", "n": 300}]
    assert {d["device_id"]: d["status"] for d in after["devices"]} == {"edge-a1": "revoked", "edge-b1": "active"}

    # a batch the county says it stored after the revocation (or a bundle that does not say when) is refused
    revoked_at = world.province.db.scalar("select revoked_at from devices where device_id = 'edge-a1'")
    later, good = a.batch(50), b.batch(50)
    cursor = world.province.db.scalar("select relay_cursor from relay_counties where county = :c", {"c": COUNTY})
    for seq, received in ((cursor + 1, [revoked_at + 1, revoked_at + 1]), (cursor + 2, None)):
        bundle = Bundle(COUNTY, seq, (900 + seq, 901 + seq), [later, good] if received else [later],
                        summary([later, good] if received else [later]), received)
        r = world.relay(bundle)
        assert r.status_code == 200, r.text
        receipt = world.receipt(r)
        assert [x.line() for x in receipt.refused] == [f"edge-a1 301-350: 设备 edge-a1 已被县 {COUNTY} 吊销，拒收 / "
                                                      f"device edge-a1 was revoked by county {COUNTY}; batch refused"]
    final = counts(world.province)
    assert final["events"] == [{"device_id": "edge-a1", "n": 300}, {"device_id": "edge-b1", "n": 350}]

    # a replayed older roster cannot bring the device back
    r = world.post("/api/v1/province/roster", old_roster, ROSTER_CONTENT_TYPE)
    assert r.status_code == 400 and "older than the one held" in r.json()["error"]["message_en"]
    assert counts(world.province) == final


def test_a_bundle_with_receive_times_that_do_not_match_its_batches_is_refused_whole(world):
    a = world.device("edge-a1", SCHOOLS[0])
    a.upload(100)
    assert world.push().exit_code == 0
    before = counts(world.province)
    batch = a.batch(10)
    bundle = Bundle(COUNTY, 2, (5, 5), [batch], summary([batch]), [1.0, 2.0])
    r = world.relay(bundle)
    assert r.status_code == 400 and "another number of receive times" in r.json()["error"]["message_en"]
    assert counts(world.province) == before


def test_a_bundle_signed_by_a_key_the_province_does_not_know_is_refused_whole(world):
    a = world.device("edge-a1", SCHOOLS[0])
    a.upload(200)
    assert world.push().exit_code == 0
    before = counts(world.province)
    intruder = generate_key(world.tmp / "intruder.pem")
    batch = a.batch(100)
    for county, message in ((COUNTY, f"relay bundle is not signed by county {COUNTY}'s registered relay key; refused whole"),
                            ("440199", "unknown county 440199: not registered at this province; refused whole")):
        forged = seal(BUNDLE_KIND, encode_bundle(Bundle(county, 2, (2, 2), [batch], summary([batch]))), intruder)
        r = world.post("/api/v1/province/relay", forged)
        assert r.status_code == 403 and r.json()["error"]["message_en"] == message
        assert counts(world.province) == before
    # a revoked county: refused whole as well
    assert world.cli(world.province, "county", "revoke", "--id", COUNTY).exit_code == 0
    a.upload(100)
    out = world.push()
    assert out.exit_code != 0 and f"county {COUNTY} is revoked: refused whole" in out.output
    assert counts(world.province)["events"] == before["events"]


def test_a_bundle_summary_counts_events_by_the_county_day_across_midnight(tmp_path):
    """Pure: the summary's days are China Standard Time days (midnight is 16:00 UTC), per school."""
    from hub_sync.formats.usage_batch import UsageEvent

    signer = generate_key(tmp_path / "device.pem")
    midnight_utc8 = 1_788_796_800  # 2026-09-08 00:00 UTC+8
    times = [midnight_utc8 - 2, midnight_utc8 - 1, midnight_utc8, midnight_utc8 + 86_399, midnight_utc8 + 86_400]
    evs = [UsageEvent(i + 1, t, "s1", "viewed", "res-1", {}) for i, t in enumerate(times)]
    one = seal("usage-batch", encode_batch(evs, "dev-1", "S1"), signer)
    other = seal("usage-batch", encode_batch(evs[:1], "dev-2", "S2"), signer)
    assert summary([one, other]) == {"S1": {"2026-09-07": 2, "2026-09-08": 2, "2026-09-09": 1}, "S2": {"2026-09-07": 1}}
