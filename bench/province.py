"""A province's school day of usage into a hub on PostgreSQL, the same day into a SQLite hub.

    python3 bench/province.py [--quick] [--events 40000000] [--devices N] [--batch-events 2000]
                              [--clients 16] [--skip-sqlite] [--profile-s 20] [--keep DIR]

1. **Batches made ahead, once**: ``--devices`` synthetic devices (Ed25519 keys, default
   20,000 for 40 million events: ~2,000 events a device, a school day's journal), each
   sending its day as signed, hash-chained ``usage-batch`` envelopes of ``--batch-events``
   events (the real format; a few day templates are encoded once and each batch is a
   template's body under the device's own header, as ``bench/reports.py`` does). Two
   processes make and sign them into shard files in a temporary folder
   (``bench/usage_day.py``); both hubs get the same files.
2. **PostgreSQL hub**: Debian's PostgreSQL 15 started here with durable settings (fsync,
   synchronous_commit and full_page_writes on) and production-sized memory; a hub data
   folder on it (``Hub.init(db_url=...)``, the devices registered through ``Registry``
   in one transaction); two ``hub serve --no-front`` processes on the folder, one nginx
   front (the hub's own ``hub_front_spec``) with both in its upstream.
3. **SQLite hub**: the product's recommended form, one ``hub serve`` (its nginx front,
   one gunicorn worker; SQLite has one writer), ``synchronous=FULL``.
4. **Senders** (``usage_day.send_day``): ``--clients`` HTTP connections (2 processes of threads) post the envelopes
   to ``/api/v1/hub/usage`` through the front, each device's batches in order, each
   answer checked (200 and a signed acknowledgement). Wall time from the first post to
   the last answer gives events/s; the hub's row count is checked afterwards.
5. **Relay**: the SQLite hub is the county (its relay outbox holds every batch it stored);
   a province hub on the same cluster (two ``hub serve`` behind one front), the county
   registered there and the relay keys exchanged; one pass of ``RelayPush.push`` (what
   ``hub relay push`` runs) is timed. ``nan`` (and why) if the pass fails.

While the PostgreSQL hub ingests, ``py-spy record`` samples one hub worker for
``--profile-s`` seconds and the CPU seconds of hub workers, PostgreSQL, nginx and the
senders are counted, to show where the two cores go.

Last line: ``pg_ingest_events_per_s=<f> pg_vs_sqlite=<f> day_ingest_minutes=<f> relay_events_per_s=<f>``
(goals: >= 150,000, >= 1.0, < 10, >= 100,000).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path


BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from hub_profile import CpuMeter, profile, summarise_profile, worker_pids  # noqa: E402
from local_server import CLI, free_port, start, start_hub, stop  # noqa: E402
from usage_day import make_day, send_day  # noqa: E402

from fixtures.postgres import PostgresCluster  # noqa: E402
from hub_sync.core.nginx_front import Front, FrontPaths, find_nginx, render, write_config  # noqa: E402
from hub_sync.hub import Hub  # noqa: E402
from hub_sync.hub.database import transaction  # noqa: E402
from hub_sync.hub.hub_front import BODY_ROUTES, JSON_BODY_KB, hub_front_spec  # noqa: E402
from hub_sync.hub.registry import Registry  # noqa: E402

DAY_EVENTS = 40_000_000  # the province day
DAY_DEVICES = 20_000
# durable (what a province would run) and sized for a 2-core, 23 GB machine; the suite's cluster is the opposite.
# WAL as docs/hub-database.md advises for a province: room for a day's ingest between checkpoints (each
# checkpoint makes the next change to every page write the whole page again) and lz4 for those pages
PG_SETTINGS = ("fsync=on", "synchronous_commit=on", "full_page_writes=on", "max_connections=200",
               "shared_buffers=2GB", "effective_cache_size=8GB", "work_mem=16MB", "maintenance_work_mem=256MB",
               "wal_buffers=64MB", "max_wal_size=32GB", "min_wal_size=1GB", "checkpoint_timeout=15min",
               "checkpoint_completion_target=0.9", "wal_compression=lz4")
GOALS = {"pg": 150_000, "ratio": 1.0, "minutes": 10.0, "relay": 100_000}


def register(hub: Hub, keys) -> None:
    """Every device into the hub's registry, in one transaction (a library call: enrollment is not measured)."""
    registry = Registry(hub.db)
    with transaction(hub.db):
        for device, school, key in keys:
            registry.register(device, school, key, school_name=f"第{school[2:8]}中心校")


# -- servers --------------------------------------------------------------------------
def serve_two_behind_one_front(hub_dir: Path, front_dir: Path, port: int) -> tuple[list, Front]:
    """Two ``hub serve --no-front`` on the same data folder and one nginx front (the hub's
    own front description, its upstream holding both) on ``port``."""
    ports = [free_port(), free_port()]
    servers = [start([*CLI, "hub", "serve", "--data", str(hub_dir), "--port", str(p), "--rsync-port", "0", "--no-front"],
                     f"http://127.0.0.1:{p}/api/v1/hub/status", 120) for p in ports]
    nginx, paths = find_nginx("", ""), FrontPaths.of(front_dir)
    text = render(hub_front_spec(hub_dir, "127.0.0.1", port), paths)
    one = f'server "unix:{paths.socket}" max_fails=0;'
    assert one in text, "the front's upstream changed: update bench/province.py"
    text = text.replace(one, " ".join(f"server 127.0.0.1:{p} max_fails=0;" for p in ports)).replace(
        "keepalive 16;", "keepalive 64;")
    write_config(nginx, paths, text)
    front = Front(nginx, paths, "127.0.0.1", port)
    front.start()
    return servers, front


def postmaster(cluster: PostgresCluster | None) -> list[int]:
    if cluster is None:
        return []
    return [int((cluster.data / "postmaster.pid").read_text().split()[0])]


def ingest_run(name: str, base_port: int, hub_dir: Path, shard_files, profile_s: float, tmp: Path,
               cluster: PostgresCluster | None) -> tuple[float, int, list[str], CpuMeter]:
    """Serve ``hub_dir`` (two processes behind one front, or ``hub serve`` alone), send the day; (seconds, held, errors, cpu)."""
    if cluster is not None:
        servers, front = serve_two_behind_one_front(hub_dir, tmp / f"{name}-front", base_port)
    else:
        servers, front = [start_hub(hub_dir, base_port, 0, timeout_s=120)], None
    spies: list = []
    meter = CpuMeter({"hub": [s.pid for s in servers], "nginx": [front.process.pid] if front else [],
                      "postgres": postmaster(cluster)})
    try:
        workers = [w for s in servers for w in worker_pids(s)]
        meter.start()
        result: dict = {}
        sender = threading.Thread(target=lambda: result.update(zip(("batches", "events", "errors", "seconds"),
                                                                    send_day("127.0.0.1", base_port, shard_files))))
        sender.start()
        if workers and profile_s > 0:
            time.sleep(min(5.0, profile_s / 4))  # past the first requests' warm-up
            spies = [profile(w, profile_s, tmp / f"{name}-{'gil' if i == 0 else 'wall'}.pyspy", gil=i == 0)
                     for i, w in enumerate(workers[:2])]
        sender.join()
        meter.stop()
        for spy in filter(None, spies):
            spy.wait(timeout=profile_s + 60)
    finally:
        if front:
            front.stop()
        for s in servers:
            stop(s)
    hub = Hub.open(hub_dir)
    held = hub.db.scalar("select count(*) from usage_events")
    hub.close()
    return result["seconds"], held, result["errors"], meter


# -- relay ----------------------------------------------------------------------------
def relay_rate(county_dir: Path, cluster: PostgresCluster, tmp: Path, profile_s: float) -> tuple[float, str]:
    """events/s of one relay pass (``RelayPush.push``, what ``hub relay push`` runs) from the county
    hub, whose outbox holds every batch it stored, to a province hub on PostgreSQL (two ``hub serve``
    behind one front, like the one above); nan and why when the relay is not in this checkout."""
    try:
        from hub_sync.hub.counties import Counties
        from hub_sync.hub.hub_settings import HubSettings
        from hub_sync.hub.relay_keys import generate_relay_key, relay_public_key, trust_province
        from hub_sync.hub.relay_push import RelayPush
    except ImportError as exc:
        return math.nan, f"the relay is not in this checkout ({exc})"
    prov_dir = tmp / "hub-province"
    province = Hub.init(prov_dir, reserve_mb=1, db_url=_psycopg(cluster.create_database("province_relay")))
    generate_relay_key(prov_dir)
    generate_relay_key(county_dir)
    Counties(province.db).add("450100", "南宁市测试县", relay_public_key(county_dir))
    province.close()
    trust_province(county_dir, relay_public_key(prov_dir))
    port = free_port()
    servers, front = serve_two_behind_one_front(prov_dir, tmp / "province-front", port)
    county = Hub.open(county_dir)
    try:
        settings = HubSettings(county.db)
        settings.set("province_url", f"http://127.0.0.1:{port}/")
        settings.set("county_code", "450100")
        workaround = ""
        if not any("province" in pattern for pattern, _ in BODY_ROUTES):
            # the front takes JSON_BODY_KB on routes it does not list; a bundle of relay_bundle_kb of device
            # envelopes is base64 twice over (in the bundle, and the bundle in its envelope): ~1.8 times that
            kb = JSON_BODY_KB // 2 - 32
            settings.set("relay_bundle_kb", str(kb))
            workaround = f" (relay_bundle_kb {kb}: the hub front does not list the relay route yet)"
        spies = [profile(w, profile_s, tmp / f"relay-{i}.pyspy", gil=True)
                 for i, w in enumerate(w for s in servers for w in worker_pids(s))]
        started = time.monotonic()
        try:
            result = RelayPush(county).push()
        except Exception as exc:  # the relay is new: say why, keep the other numbers
            return math.nan, f"the relay pass failed: {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        for spy in filter(None, spies):
            spy.wait(timeout=profile_s + 60)
    finally:
        county.close()
        front.stop()
        for s in servers:
            stop(s)
    province = Hub.open(prov_dir)
    held = province.db.scalar("select count(*) from usage_events")
    province.close()
    note = (f"{result.bundles} bundles{workaround}, {result.accepted:,} batches accepted, {len(result.refused)} refused;"
            f" the province holds {held:,} events after {seconds:.1f} s")
    return held / seconds, note


def _psycopg(url: str) -> str:
    """The cluster's URL with SQLAlchemy's psycopg 3 driver named."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


# -- main -----------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smoke-sized run (200,000 events, 100 devices, no profile)")
    ap.add_argument("--events", type=int, default=DAY_EVENTS, help="events in all (the day: 40,000,000)")
    ap.add_argument("--devices", type=int, help="devices (default: 20,000 scaled with --events, ~2,000 events each)")
    ap.add_argument("--batch-events", type=int, default=2000, help="events per signed batch")
    ap.add_argument("--clients", type=int, default=16, help="concurrent sender connections")
    ap.add_argument("--profile-s", type=float, default=20.0, help="py-spy one PostgreSQL hub worker this long (0: no)")
    ap.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only (pg_vs_sqlite=nan)")
    ap.add_argument("--keep", type=Path, help="keep the batches, hubs and cluster in this folder")
    args = ap.parse_args()
    if args.quick:
        args.events, args.devices, args.profile_s = 200_000, 100, 0.0
    devices = args.devices or max(1, round(DAY_DEVICES * args.events / DAY_EVENTS))
    tmp = args.keep or Path(tempfile.mkdtemp(prefix="bench-province-", dir="/var/tmp"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.chmod(tmp, 0o755)  # the cluster runs as the postgres user under it
    cluster = None
    try:
        t = time.monotonic()
        (tmp / "day").mkdir(exist_ok=True)
        keys, shard_files, batches, events = make_day(tmp / "day", devices, args.events, args.batch_events, args.clients)
        size = sum(p.stat().st_size for p in shard_files)
        print(f"made {events:,} events of {devices:,} devices in {batches:,} signed batches ({size / 2**20:,.0f} MiB)"
              f" in {time.monotonic() - t:.0f} s", flush=True)

        (tmp / "pg").mkdir(exist_ok=True)
        cluster = PostgresCluster(root=tmp / "pg", settings=PG_SETTINGS).start()
        pg_dir = tmp / "hub-pg"
        hub = Hub.init(pg_dir, reserve_mb=1, db_url=_psycopg(cluster.create_database("province")))
        register(hub, keys)
        hub.close()
        print(f"PostgreSQL 15 ({', '.join(PG_SETTINGS[:3])}, shared_buffers 2GB): two hub serve behind one nginx, "
              f"{args.clients} senders", flush=True)
        pg_s, pg_held, pg_errors, pg_cpu = ingest_run("pg", free_port(), pg_dir, shard_files, args.profile_s, tmp,
                                                      cluster)
        pg_rate = events / pg_s
        print(f"  {events:,} events in {pg_s:.1f} s: {pg_rate:,.0f} events/s; held {pg_held:,}; {len(pg_errors)} errors")
        print("  " + pg_cpu.line(), flush=True)

        sq_rate, sq_s, sq_errors, sq_held = math.nan, math.nan, [], 0
        if not args.skip_sqlite:
            sq_dir = tmp / "hub-sqlite"
            hub = Hub.init(sq_dir, reserve_mb=1)
            register(hub, keys)
            hub.close()
            print(f"SQLite (synchronous=FULL): one hub serve with its nginx front, {args.clients} senders", flush=True)
            sq_s, sq_held, sq_errors, sq_cpu = ingest_run("sqlite", free_port(), sq_dir, shard_files, args.profile_s,
                                                          tmp, None)
            sq_rate = events / sq_s
            print(f"  {events:,} events in {sq_s:.1f} s: {sq_rate:,.0f} events/s; held {sq_held:,}; {len(sq_errors)} errors")
            print("  " + sq_cpu.line(), flush=True)

        relay, relay_note = relay_rate(pg_dir if args.skip_sqlite else tmp / "hub-sqlite", cluster, tmp,
                                       args.profile_s)
        minutes = DAY_EVENTS / pg_rate / 60
        for what, errors in (("PostgreSQL", pg_errors), ("SQLite", sq_errors)):
            for e in errors[:3]:
                print(f"  {what} error: {e}")
        for name, what in (("pg-gil", "a PostgreSQL hub worker's CPU (py-spy --gil: the thread holding Python's lock)"),
                           ("pg-wall", "the other PostgreSQL hub worker's request threads (py-spy: busy or waiting)"),
                           ("sqlite-gil", "the SQLite hub worker's CPU (py-spy --gil)")):
            if args.profile_s > 0 and (tmp / f"{name}.pyspy").exists():
                print(f"where the time goes, {what}:")
                print("\n".join(summarise_profile([tmp / f"{name}.pyspy"])))
        if args.profile_s > 0 and (tmp / "relay-0.pyspy").exists():
            print("where the time goes, the province's hub workers during the relay (py-spy --gil, both):")
            print("\n".join(summarise_profile(sorted(tmp.glob("relay-*.pyspy")), request="relay_api.py")))
        print(f"relay (county {'PostgreSQL' if args.skip_sqlite else 'SQLite'} hub -> province on PostgreSQL): {relay_note}")
        print(f"{'measure':44} {'value':>14} {'goal':>12}")
        print(f"{'PostgreSQL hub events/s (2 serve + front)':44} {pg_rate:14,.0f} {GOALS['pg']:>12,}")
        print(f"{'SQLite hub events/s (1 serve + front)':44} {sq_rate:14,.0f} {'':>12}")
        print(f"{'PostgreSQL / SQLite':44} {pg_rate / sq_rate:14.3f} {GOALS['ratio']:>12}")
        print(f"{'measured: events, seconds (PostgreSQL)':44} {f'{events:,} {pg_s:.1f}':>14} {'':>12}")
        print(f"{'the 40M-event day, minutes (at that rate)':44} {minutes:14.2f} {'< ' + str(GOALS['minutes']):>12}")
        print(f"{'relay events/s':44} {relay:14,.0f} {GOALS['relay']:>12,}")
        bad = [f"PostgreSQL held {pg_held:,} of {events:,}"] if pg_held != events else []
        if not args.skip_sqlite and sq_held != events:
            bad.append(f"SQLite held {sq_held:,} of {events:,}")
        if pg_errors or sq_errors or bad:
            print("NOT ALL STORED: " + "; ".join(bad + [f"{len(pg_errors)} + {len(sq_errors)} failed posts"]))
        print(f"pg_ingest_events_per_s={pg_rate:.1f} pg_vs_sqlite={pg_rate / sq_rate:.3f} "
              f"day_ingest_minutes={minutes:.2f} relay_events_per_s={relay:.1f}")
    finally:
        if cluster and not args.keep:
            cluster.destroy()
        elif cluster:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
