"""A county's year of usage, then its report pages under load.

    python3 bench/reports.py [--quick] [--schools 500] [--events 20000000] [--users 10] [--seconds 30]

1. A hub (``Hub.init`` in a temporary folder) with 600 catalogued resources and one
   enrolled device per school (a quarter of them at a teaching point, each with a
   signed device report stored in the fleet).
2. A year of usage: every device sends one signed, hash-chained batch per week (the
   real ``usage-batch`` format, signed with the device's own key) and the hub stores
   each through the real ingest path (``UsageIngest.ingest``: verification, chain,
   events, roll-ups in one transaction). Batches are built fast: a few week templates
   are encoded once and each device's batch is that body under its own header (device,
   sequence range, chain hash, start time), signed in a second process while the
   first ingests (the two cores, one each).
3. The hub served by ``school-edge hub serve`` (its nginx front, gunicorn behind it);
   10 users (httpx, one thread each, logged in through the console's login form as
   ``viewer``, ``bureau_admin`` or a ``school_head``) load the report page for the
   county, a school and a teaching point over the last 4 weeks, a month and a term,
   back to back. Meanwhile one device keeps sending fresh batches over HTTP and the
   bench polls the report until they are counted (``rollup_lag_s``, the worst).

Last line: ``report_p95_ms=<float> rollup_lag_s=<float>`` (goals: 300 ms, 60 s).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import statistics
import struct
import sys
import tempfile
import threading
import time
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import sqlalchemy
from tenacity import retry, retry_if_result, stop_after_attempt, wait_fixed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import free_port, start_hub, stop  # noqa: E402

from hub_sync.core.keys import generate_key, load_signer, public_key_dict  # noqa: E402
from hub_sync.formats.device_report import DeviceReport  # noqa: E402
from hub_sync.formats.envelope import seal  # noqa: E402
from hub_sync.formats.usage_batch import BATCH_CONTENT_TYPE, MAGIC, UsageEvent, batch_hash, encode_batch  # noqa: E402
from hub_sync.hub import Hub  # noqa: E402
from hub_sync.hub.accounts import Accounts  # noqa: E402
from hub_sync.hub.fleet import Fleet  # noqa: E402
from hub_sync.hub.ingest import UsageIngest  # noqa: E402
from hub_sync.hub.registry import Registry  # noqa: E402

SUBJECTS = ("语文", "数学", "英语", "科学", "道德与法治", "音乐", "美术", "体育", "信息科技")
GRADES = ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级")
KINDS = ("video", "pdf", "html", "audio")
YEAR_START = date(2025, 9, 1)  # a Monday: a school year from September
WEEKS = 52
TEMPLATES = 12
RESOURCES = 600
PASSWORD = "bench-password-1"
DAY_S = 86400
CST = timezone(timedelta(hours=8))


# -- the data set -------------------------------------------------------------------
def week_template(rng: random.Random, n: int) -> list[UsageEvent]:
    """One school week of ``n`` events (Monday 08:00 county time = 0): 200 learners and
    6 teachers on the 40 resources of the week's lessons."""
    lessons = rng.sample(range(RESOURCES), 40)
    events, ts = [], 0.0
    learners = rng.randint(60, 200)
    for i in range(n):
        day, minute = divmod(int(i * 5 * 9 * 60 / n), 9 * 60)  # spread over Mon-Fri 08:00-17:00
        ts = day * DAY_S + minute * 60 + rng.random()
        r = rng.random()
        if r < 0.01:
            events.append(UsageEvent(i + 1, ts, f"person:{900 + rng.randint(0, 5)}", "assigned", f"assignment:{i}",
                                     {"resource_id": f"res-{rng.choice(lessons):04d}"}))
        elif r < 0.04:
            events.append(UsageEvent(i + 1, ts, f"person:{rng.randint(1, learners)}", "submitted",
                                     f"assignment:{rng.randint(0, n)}", {}))
        else:
            events.append(UsageEvent(i + 1, ts, f"person:{rng.randint(1, learners)}",
                                     rng.choice(("viewed", "progressed", "progressed", "completed")),
                                     f"resource:res-{rng.choice(lessons):04d}", {}))
    return events


def encoded_templates(per_week: int, seed: int) -> list[tuple[bytes, dict, int]]:
    """(body, header fields, events) of each template, encoded once."""
    rng = random.Random(seed)
    out = []
    for _ in range(TEMPLATES):
        payload = encode_batch(week_template(rng, per_week), "t", "t")
        (hlen,) = struct.unpack(">H", payload[4:6])
        header = json.loads(payload[6:6 + hlen])
        out.append((payload[6 + hlen:], header, header["last"]))
    return out


def _pick(device: str, week: int) -> int:
    """Which template a device's week uses (stable across processes, unlike hash())."""
    return (zlib.crc32(device.encode()) + week) % TEMPLATES


def payload_for(templates, device: str, school: str, week: int, first: int, prev: str, t0_ms: int) -> bytes:
    """A batch payload: a template's body under this device's header (the format's own layout)."""
    body, header, n = templates[_pick(device, week)]
    h = dict(header, device=device, school=school, first=first, last=first + n - 1, prev=prev, t0=t0_ms)
    raw = json.dumps(h, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return MAGIC + struct.pack(">H", len(raw)) + raw + body


def week_start_ms(week: int) -> int:
    start = datetime.combine(YEAR_START + timedelta(weeks=week), datetime.min.time(), CST) + timedelta(hours=8)
    return int(start.timestamp() * 1000)


_worker: dict = {}


def _init_worker(devices, templates) -> None:
    _worker["devices"] = [(d, s, load_signer(k)) for d, s, k in devices]
    _worker["templates"] = templates
    _worker["chain"] = {d: (1, "") for d, _, _ in devices}  # next first seq, hash to chain on
    _worker["week"] = 0


def signed_week(week: int) -> list[bytes]:
    """Every device's signed batch of ``week``, chained to its batch of the week before
    (one worker process takes the weeks in order and keeps each device's chain)."""
    assert week == _worker["week"], "weeks must come in order"
    _worker["week"] += 1
    templates, chain, out = _worker["templates"], _worker["chain"], []
    for device, school, signer in _worker["devices"]:
        first, prev = chain[device]
        payload = payload_for(templates, device, school, week, first, prev, week_start_ms(week))
        chain[device] = (first + templates[_pick(device, week)][2], batch_hash(payload))
        out.append(seal("usage-batch", payload, signer))
    return out


def build(hub: Hub, schools: int, tmp: Path, rng: random.Random) -> list[tuple[str, str, str]]:
    """Resources, devices (keys on disk), teaching points' reports; the devices as (id, school, key path)."""
    with hub.db.transaction():
        hub.db.execute("insert into channels (id, title, mandatory, created_at) values ('all', '全部', 1, 0)")
        hub.db.executemany("insert into hub_resources (id, channel, meta, files, updated_at) values (?, 'all', ?, '[]', 0)",
                                [(f"res-{i:04d}", json.dumps({"title": f"{SUBJECTS[i % 9]}{GRADES[i // 9 % 9]}第{i}课",
                                                              "subject": SUBJECTS[i % 9], "grade": GRADES[i // 9 % 9],
                                                              "kind": KINDS[i % 4]}, ensure_ascii=False))
                                 for i in range(RESOURCES)])
    devices, registry, fleet = [], Registry(hub.db), Fleet(hub.db)
    for i in range(schools):
        school = f"44010{i // 4:03d}{i % 4:02d}"  # 4 devices per central school: the school and 3 teaching points
        device = f"edge-{i:04d}"
        key = tmp / "keys" / f"{device}.pem"
        key.parent.mkdir(exist_ok=True)
        registry.register(device, school, public_key_dict(generate_key(key)), school_name=f"第{i // 4}中心校")
        point = f"教学点{i % 4}" if i % 4 else ""
        fleet.record(DeviceReport(device, school, 1, time.time(), "1.0.0", point, {"version": "1.0.0"},
                                  {"last_success": "2026-06-30 08:00:00"}, 8 * 10**9), school)
        devices.append((device, school, str(key)))
    return devices


def ingest_year(hub: Hub, devices, templates) -> tuple[int, float]:
    """Every week's batches through ``UsageIngest.ingest``, signed by a second process meanwhile."""
    # the bulk form: the same ingest, with WAL's synchronous=NORMAL on the hub's connections (a commit
    # is durable at the next checkpoint instead of fsync'ed one by one); 26,000 fsyncs would measure the
    # disk. Set after the hub's own pragmas on every new connection, and the pooled ones replaced.
    sqlalchemy.event.listen(hub.db.engine, "connect", lambda conn, _: conn.execute("pragma synchronous = NORMAL"))
    hub.db.close()
    ingest = UsageIngest(hub.db)
    stored, started = 0, time.monotonic()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1, initializer=_init_worker, initargs=(devices, templates)) as pool:
        for week, envelopes in enumerate(pool.imap(signed_week, range(WEEKS))):
            for env in envelopes:
                stored += ingest.ingest(env).stored
            if week % 4 == 3:
                rate = stored / (time.monotonic() - started)
                print(f"  week {week + 1:2d}/{WEEKS}: {stored:,} events stored ({rate:,.0f}/s)", flush=True)
    return stored, time.monotonic() - started


# -- the load -----------------------------------------------------------------------
@retry(retry=retry_if_result(lambda c: c is None), wait=wait_fixed(3.5), stop=stop_after_attempt(40))
def login(base: str, name: str) -> httpx.Client | None:
    """A client logged in through the console's login form (None, and tried again, when
    the front's login rate limit answers 429)."""
    client = httpx.Client(base_url=base, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/login").text).group(1)
    answer = client.post("/console/login", data={"name": name, "password": PASSWORD, "csrf_token": token, "next": "/console/"})
    if answer.status_code == 429:
        client.close()
        return None
    if answer.status_code != 302:
        raise SystemExit(f"login as {name} failed: HTTP {answer.status_code}")
    return client


def same_session(base: str, logged: httpx.Client) -> httpx.Client:
    """Another client (its own connections) on a logged-in client's session cookie."""
    return httpx.Client(base_url=base, timeout=60, cookies=logged.cookies)


def report_urls(devices, rng: random.Random) -> list[tuple[str, str]]:
    """(who, url) pairs: periods of the school year for the county, a school, a teaching point."""
    last = YEAR_START + timedelta(weeks=WEEKS) - timedelta(days=1)
    periods = [(last - timedelta(days=27), last), (date(2026, 5, 1), date(2026, 5, 31)),
               (date(2026, 3, 1), last), (last - timedelta(days=6), last)]
    out = []
    for first, end in periods:
        q = f"first={first}&last={end}"
        out.append(("county", f"/console/reports?{q}"))
        school = rng.choice(devices)[1]
        out.append(("county", f"/console/reports?{q}&school={school}"))
        out.append(("county", f"/console/reports?{q}&school={school}&point=教学点1"))
        out.append(("head", f"/console/reports?{q}"))
    return out


def run_users(base: str, urls, users: int, seconds: float, heads: list[str]) -> tuple[list[float], int]:
    """``users`` threads, each logged in (before the clock starts) as a county account and a school head."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    logged = {name: login(base, name) for name in ["bench-admin", *heads]}
    logged["bench-viewer"] = login(base, "bench-viewer")
    sessions = [(same_session(base, logged["bench-viewer" if n % 2 else "bench-admin"]),
                 same_session(base, logged[heads[n % len(heads)]])) for n in range(users)]
    stop_at = time.monotonic() + seconds

    def user(n: int) -> None:
        county, head = sessions[n]
        rng = random.Random(n)
        while time.monotonic() < stop_at:
            who, url = rng.choice(urls)
            t = time.perf_counter()
            answer = (head if who == "head" else county).get(url)
            ms = (time.perf_counter() - t) * 1000
            with lock:
                latencies.append(ms)
                if answer.status_code != 200:
                    errors[0] += 1

    threads = [threading.Thread(target=user, args=(n,)) for n in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for county, head in sessions:
        county.close()
        head.close()
    for client in logged.values():
        client.close()
    return latencies, errors[0]


def live_feed(base: str, device: str, school: str, key: str, start_seq: int, prev: str, seconds: float,
              viewer: httpx.Client) -> list[float]:
    """A device sends a fresh batch every few seconds over HTTP; how long until the report counts it."""
    signer = load_signer(key)
    lags, seq = [], start_seq
    stop_at = time.monotonic() + seconds
    today = datetime.now(CST).date()
    totals = f"/console/reports/totals.csv?first={today}&last={today}&school={school}"

    def events_now() -> int:
        rows = viewer.get(totals).content.decode("utf-8-sig").splitlines()
        value = rows[1].split(",")[2] if len(rows) > 1 else "0"
        return int(value) if value.isdigit() else 0

    while time.monotonic() < stop_at:
        before = events_now()
        now = time.time()
        events = [UsageEvent(seq + i, now + i * 0.01, f"person:{i % 20 + 1}", "viewed", "resource:res-0001", {})
                  for i in range(50)]
        payload = encode_batch(events, device, school, prev)
        sent = time.monotonic()
        answer = httpx.post(f"{base}/api/v1/hub/usage", content=seal("usage-batch", payload, signer),
                            headers={"Content-Type": BATCH_CONTENT_TYPE}, timeout=60)
        if answer.status_code != 200:
            raise SystemExit(f"live batch refused: HTTP {answer.status_code} {answer.text[:200]}")
        while events_now() < before + 50:
            if time.monotonic() - sent > 120:
                break
            time.sleep(0.2)
        lags.append(time.monotonic() - sent)
        seq, prev = seq + 50, batch_hash(payload)
        time.sleep(2)
    return lags


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values, default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke-sized run (8 schools, 40,000 events, 10 s)")
    ap.add_argument("--schools", type=int, default=500)
    ap.add_argument("--events", type=int, default=20_000_000)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--data", type=Path, help="keep the data folder here (default: a temporary one)")
    args = ap.parse_args()
    if args.quick:
        args.schools, args.events, args.seconds = 8, 40_000, 8.0
    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench-reports-") if args.data is None else None
    tmp = Path(tmp_ctx.name) if tmp_ctx else args.data
    tmp.mkdir(parents=True, exist_ok=True)
    rng = random.Random(12)
    try:
        if (tmp / "hub" / "keys" / "root.pem").exists():  # --data of an earlier run: measure its pages again
            hub = Hub.open(tmp / "hub")
            devices = [(d, s, str(tmp / "keys" / f"{d}.pem")) for d, s in hub.db.execute(
                "select device_id, school_code from devices where device_id like 'edge-%' order by device_id")]
            stored = hub.db.execute("select count(*) from usage_events").fetchone()[0]
            print(f"reusing {tmp}: {len(devices)} devices, {stored:,} events")
        else:
            hub = Hub.init(tmp / "hub")
            devices = build(hub, args.schools, tmp, rng)
            per_week = max(1, -(-args.events // (args.schools * WEEKS)))  # at least --events in all
            templates = encoded_templates(per_week, seed=5)
            print(f"{args.schools} schools, {WEEKS} weekly batches each of ~{per_week} events ({len(templates)} templates)")
            stored, ingest_s = ingest_year(hub, devices, templates)
            print(f"ingested {stored:,} events in {ingest_s:.0f} s ({stored / ingest_s:,.0f} events/s, roll-ups included)")
        accounts = Accounts(hub.db)
        have = {a.name for a in accounts.all()}
        wanted = [("bench-viewer", "viewer", None), ("bench-admin", "bureau_admin", None)]
        wanted += [(f"bench-head-{n}", "school_head", school) for n, school in enumerate(sorted({d[1] for d in devices})[:4])]
        for name, role, school in wanted:
            if name not in have:
                accounts.add(name, role, PASSWORD, school=school)
        heads = [name for name, role, _ in wanted if role == "school_head"]
        last_device = devices[-1]
        contiguous, chain = UsageIngest(hub.db).state(last_device[0])
        rows = hub.db.execute("select count(*) from rollup").fetchone()[0]
        hub.close()
        port = free_port()
        server = start_hub(tmp / "hub", port, free_port(), timeout_s=120)
        base = f"http://127.0.0.1:{port}"
        try:
            urls = report_urls(devices, rng)
            viewer = login(base, "bench-viewer")
            for _, url in urls[:4]:  # warm the page cache once, as a county's first visitor would
                viewer.get(url)
            lags: list[float] = []
            feeder = threading.Thread(target=lambda: lags.extend(live_feed(
                base, last_device[0], last_device[1], last_device[2], contiguous + 1, chain, args.seconds, viewer)))
            feeder.start()
            latencies, errors = run_users(base, urls, args.users, args.seconds, heads)
            feeder.join()
            viewer.close()
        finally:
            stop(server)
        print(f"roll-up cells: {rows:,}; report requests: {len(latencies)} by {args.users} users in {args.seconds:.0f} s,"
              f" {errors} not 200")
        print(f"{'measure':36} {'n':>6} {'median':>9} {'p95':>9} {'goal':>7}")
        print(f"{'report page ms':36} {len(latencies):6d} {statistics.median(latencies):9.1f} {p95(latencies):9.1f} {300:7d}")
        print(f"{'roll-up lag s (batch sent -> counted)':36} {len(lags):6d} {statistics.median(lags or [0]):9.2f}"
              f" {max(lags or [0]):9.2f} {60:7d}")
        print(f"report_p95_ms={p95(latencies):.1f} rollup_lag_s={max(lags or [0]):.2f}")
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()


if __name__ == "__main__":
    main()
