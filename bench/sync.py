"""Benchmark of what crosses the school's thin link, in one run (about a minute).

    python3 bench/sync.py [--devices 1000] [--events-per-device 1000]

1. Usage wire bytes per event: a realistic classroom day (300 students x ~40 acts)
   uploaded by ``edge_agent.sync.usage_sync.upload_pending`` to the real hub app (HTTP on
   loopback); bytes counted on the TCP stream by a relay (HTTP headers included),
   compared with the same events as xAPI statements (plain and gzip'ed JSON).
2. Idle sync bytes: a sync when nothing changed, counted on the TCP stream the same way:
   ``school-edge edge sync`` against ``school-edge hub serve`` (set up with the real CLI:
   channel, resources, publish, provision make/apply, one full sync first; HTTP and rsync)
   plus ``upload_pending`` with nothing pending (one small signed poll for the county's messages,
   answered 204 with no body).
3. Resume overhead: a 50 MB file fetched with the real rsync (hub_sync.client.rsync_transport)
   from the real rsync daemon (hub_sync.hub.rsync_daemon), the connection cut three
   times by the relay; extra bytes over one uncut transfer.
4. Hub ingest rate: 1,000 devices, each one pre-built signed batch, through the hub's
   storage layer ``UsageIngest.ingest`` (signature check, decode, chain, SQLite insert,
   commit) plus sealing the signed acknowledgement; HTTP is not included.
5. A channel of 20,000 resources (small generated files, hash bins): a full first
   ``school-edge edge sync`` over loopback (not shaped), then the TCP bytes (HTTP and rsync,
   both ways) of an idle sync and of a sync after one added resource, the file itself
   (incompressible, so rsync sends it whole) excluded.

The last line is machine-readable:
``wire_bytes_per_event=<float> idle_sync_bytes=<int> resume_overhead=<float> ingest_events_per_s=<float>
idle_sync_bytes_20k=<int> one_change_bytes_20k=<int>``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_agent.appliance import Appliance  # noqa: E402
from edge_agent.config import EdgeConfig  # noqa: E402
from edge_agent.const import DEVICE_KEY_FILE, HUB_ONLINE_KEY_FILE  # noqa: E402
from edge_agent.sync.usage_sync import upload_pending  # noqa: E402
from hub_sync.formats.envelope import seal  # noqa: E402
from hub_sync.hub import Hub  # noqa: E402
from hub_sync.formats.usage_ack import seal_ack  # noqa: E402
from hub_sync.hub.ingest import UsageIngest  # noqa: E402
from hub_sync.hub.registry import Registry  # noqa: E402
from hub_sync.core.keys import generate_key, public_key_dict  # noqa: E402
from hub_sync.formats.usage_batch import UsageEvent, encode_batch  # noqa: E402
from hub_sync.formats.xapi import statements  # noqa: E402
from local_server import free_port, start_hub, start_hub_gunicorn, stop  # noqa: E402  (bench/ is the script's folder)

SCHOOL = "4401020301"
MB = 1024 * 1024


# -- a realistic day ------------------------------------------------------------
def classroom_day(students: int = 300, acts_per_student: int = 40, seed: int = 7,
                  day_start: float = 1_760_000_000.0) -> list[tuple]:
    """(ts, actor, verb, object, data) for one school day, in time order.

    Students of six grades open videos (viewed, progressed 50 %/80 %, completed with
    seconds watched), documents (viewed, completed) and exercises (viewed, 2-7
    answered items with correctness, submitted with a score), 5-90 s apart.
    """
    rnd = random.Random(seed)
    subjects = ("yw", "sx", "yy", "kx")   # 语文 数学 英语 科学
    acts = []
    for st in range(students):
        actor = f"stu-{SCHOOL}-{st // 40 + 1:02d}{st % 40 + 1:02d}"
        grade = st // 50 + 1
        t = day_start + 8 * 3600 + rnd.randint(0, 600)
        n = 0
        while n < acts_per_student:
            kind = rnd.choice(("video", "doc", "ex"))
            res = f"res-{rnd.choice(subjects)}-g{grade}-u{rnd.randint(1, 8)}-l{rnd.randint(1, 4)}-{kind}"
            if kind == "video":
                seq = [("viewed", {}), ("progressed", {"pct": 50}), ("progressed", {"pct": 80}),
                       ("completed", {"s": rnd.randint(200, 600)})]
            elif kind == "doc":
                seq = [("viewed", {}), ("completed", {"s": rnd.randint(30, 300)})]
            else:
                seq = [("viewed", {})] + [("answered", {"item": f"q{i}", "correct": rnd.random() < 0.7})
                                          for i in range(1, rnd.randint(3, 8))] + [("submitted", {"score": rnd.randint(40, 100)})]
            for verb, data in seq:
                t += rnd.uniform(5, 90)
                acts.append((t, actor, verb, res, data))
                n += 1
    acts.sort(key=lambda a: a[0])
    return acts


# -- a TCP relay that counts (and can cut) the stream -----------------------------
class CountingRelay:
    """127.0.0.1:port -> target; counts bytes both ways; ``cut_after`` closes a
    connection once that many bytes went downstream (a link cut mid-transfer)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.up = self.down = 0
        self.cut_after: int | None = None
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self._lock:
            self.up = self.down = 0

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state = {"down": 0}
            for a, b, way in ((client, server, "up"), (server, client, "down")):
                threading.Thread(target=self._pipe, args=(a, b, way, state, client, server), daemon=True).start()

    def _pipe(self, src, dst, way, state, client, server) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if way == "down" and self.cut_after is not None:
                    room = self.cut_after - state["down"]
                    if room <= 0:
                        break
                    data = data[:room]
                dst.sendall(data)
                with self._lock:
                    setattr(self, way, getattr(self, way) + len(data))
                if way == "down":
                    state["down"] += len(data)
        except OSError:
            pass
        for s in (client, server):   # a cut (or an end) closes both sides at once
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


# -- 1 and 2: usage on the wire ---------------------------------------------------
def bench_usage_wire(work: Path) -> dict:
    hub = Hub.init(work / "hub", reserve_mb=1)
    app = Appliance.open(EdgeConfig.load(work / "edge", {"free_space_reserve_mb": 1, "advertise": False}))
    signer = generate_key(app.data_dir / DEVICE_KEY_FILE)
    app.set_identity(school_code=SCHOOL)
    Registry(hub.db).register(app.device_id, SCHOOL, public_key_dict(signer))
    (app.data_dir / HUB_ONLINE_KEY_FILE).parent.mkdir(parents=True, exist_ok=True)
    (app.data_dir / HUB_ONLINE_KEY_FILE).write_text(json.dumps(public_key_dict(hub.online_signer)))
    day = classroom_day()
    app.journal.append_many([(a, v, o, d, t) for t, a, v, o, d in day])
    events = app.journal.pending(0, len(day))
    port = free_port()
    hub_server = start_hub_gunicorn(hub.data_dir, port)
    relay = CountingRelay(("127.0.0.1", port))
    try:
        result = upload_pending(app, f"http://127.0.0.1:{relay.port}")
        time.sleep(0.2)
        tcp = relay.up + relay.down
        relay.reset()
        idle = upload_pending(app, f"http://127.0.0.1:{relay.port}")
        time.sleep(0.2)
        idle_bytes = relay.up + relay.down
    finally:
        relay.close()
        stop(hub_server)
    xapi = [json.dumps(s, ensure_ascii=False, separators=(",", ":")).encode() for s in statements(events, app.device_id, SCHOOL)]
    xapi_doc = b"[" + b",".join(xapi) + b"]"
    n = len(events)
    out = {
        "events": n, "batches": result.batches, "body_bytes": result.bytes_sent + result.bytes_received,
        "tcp_bytes": tcp, "wire_bytes_per_event": tcp / n,
        "xapi_plain_per_event": len(xapi_doc) / n, "xapi_gzip_per_event": len(gzip.compress(xapi_doc, 9)) / n,
        "idle_usage_bytes": idle_bytes, "idle_batches": idle.batches,
    }
    app.close()
    hub.close()
    return out


def cli(*args: str, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, "-m", "edge_agent.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"school-edge {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def bench_idle_content(work: Path) -> dict:
    """``school-edge edge sync`` when nothing changed, through the real hub (``hub serve``)
    set up with the real CLI: a published channel, a provisioned appliance, one full sync first."""
    hub_dir, edge_dir = work / "hub", work / "edge"
    work.mkdir(parents=True, exist_ok=True)
    cli("hub", "init", "--data", str(hub_dir))
    cli("hub", "channel", "--data", str(hub_dir), "yw1", "--title", "一年级语文 统编版", "--mandatory")
    for i in range(5):
        f = work / f"lesson{i}.mp4"
        f.write_bytes(os.urandom(200_000))
        cli("hub", "add-resource", "--data", str(hub_dir), "--channel", "yw1", "--id", f"yw1-u1-l{i}",
            "--title", f"第{i + 1}课", "--kind", "video", "--grade", "一年级", "--subject", "语文", str(f))
    cli("hub", "publish", "--data", str(hub_dir))
    http_port, rsync_port = free_port(), free_port()
    http_relay, rsync_relay = CountingRelay(("127.0.0.1", http_port)), CountingRelay(("127.0.0.1", rsync_port))
    cli("provision", "make", "--hub-data", str(hub_dir), "--school-code", SCHOOL, "--school-name", "测试小学",
        "--hub-url", f"http://127.0.0.1:{http_relay.port}", "--rsync-url", f"rsync://127.0.0.1:{rsync_relay.port}/content",
        "--out", str(work / "bundle"))
    hub_server = start_hub(hub_dir, http_port, rsync_port)
    try:
        cli("provision", "apply", "--data", str(edge_dir), str(work / "bundle"))
        cli("edge", "sync", "--data", str(edge_dir), "--force")
        time.sleep(0.2)
        first = http_relay.up + http_relay.down + rsync_relay.up + rsync_relay.down
        http_relay.reset()
        rsync_relay.reset()
        cli("edge", "sync", "--data", str(edge_dir), "--force")
        time.sleep(0.2)
        idle = http_relay.up + http_relay.down + rsync_relay.up + rsync_relay.down
    finally:
        http_relay.close()
        rsync_relay.close()
        stop(hub_server)
    return {"first_sync_bytes": first, "idle_content_bytes": idle}


# -- 5: a channel of 20,000 ----------------------------------------------------------
def seed_channel(hub, channel: str, count: int) -> None:
    """``count`` resources of one small file each, fast: files straight into the store
    folder, rows in one bulk insert (the store's per-file fsyncs would take minutes)."""
    import hashlib

    rows = []
    for i in range(count):
        data = f"<h1>第{i}课</h1><p>{os.urandom(24).hex()}</p>".encode()
        sha = hashlib.sha256(data).hexdigest()
        path = hub.store.path_for(sha)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        meta = {"title": f"第{i}课", "kind": "html", "stage": "小学", "grade": f"{i % 6 + 1}年级", "subject": "语文",
                "edition": "统编版", "chapter": f"第{i // 20 + 1}单元"}
        rows.append({"id": f"res-{i:05d}", "channel": channel, "meta": json.dumps(meta, ensure_ascii=False),
                     "files": json.dumps([{"path": "index.html", "sha256": sha, "size": len(data), "mime": "text/html"}]),
                     "updated_at": time.time()})
    hub.db.executemany("insert into hub_resources (id, channel, meta, files, updated_at) values (:id, :channel, :meta, :files, :updated_at)", rows)


def bench_big_channel(work: Path, resources: int = 20_000) -> dict:
    """Idle and one-change sync bytes against one channel of ``resources`` resources."""
    from hub_sync.hub.channels import Channels
    from hub_sync.hub.publisher import publish

    hub_dir, edge_dir = work / "hub", work / "edge"
    hub = Hub.init(hub_dir, reserve_mb=1)
    Channels(hub.db).put_channel("county-yw", "县级语文资源库", mandatory=True)
    seed_channel(hub, "county-yw", resources)
    t = time.perf_counter()
    publish(hub)
    publish_s = time.perf_counter() - t
    http_port, rsync_port = free_port(), free_port()
    http_relay, rsync_relay = CountingRelay(("127.0.0.1", http_port)), CountingRelay(("127.0.0.1", rsync_port))
    cli("provision", "make", "--hub-data", str(hub_dir), "--school-code", SCHOOL, "--school-name", "测试小学",
        "--hub-url", f"http://127.0.0.1:{http_relay.port}", "--rsync-url", f"rsync://127.0.0.1:{rsync_relay.port}/content",
        "--out", str(work / "bundle"))
    hub_server = start_hub(hub_dir, http_port, rsync_port)

    def wire() -> int:
        time.sleep(0.2)
        return http_relay.up + http_relay.down + rsync_relay.up + rsync_relay.down

    def reset() -> None:
        http_relay.reset()
        rsync_relay.reset()

    try:
        cli("provision", "apply", "--data", str(edge_dir), str(work / "bundle"))
        t = time.perf_counter()
        cli("edge", "sync", "--data", str(edge_dir), "--force", timeout=1800)
        first_s, first = time.perf_counter() - t, wire()
        reset()
        cli("edge", "sync", "--data", str(edge_dir), "--force")
        idle = wire()
        added = os.urandom(4096)  # incompressible: rsync sends it whole, so it can be taken out
        sha = hub.store.put_bytes(added).sha256
        Channels(hub.db).put_resource("res-new", "county-yw", {"title": "新课", "kind": "html", "grade": "一年级",
                                                                "subject": "语文", "chapter": "第一单元"},
                                      [{"path": "index.html", "sha256": sha, "size": len(added), "mime": "text/html"}])
        publish(hub)
        reset()
        out = cli("edge", "sync", "--data", str(edge_dir), "--force")
        one_change = wire() - len(added)
        if "1 files fetched" not in out:
            raise RuntimeError(f"the one-change sync did not fetch the new file: {out}")
    finally:
        http_relay.close()
        rsync_relay.close()
        stop(hub_server)
        hub.close()
    return {"resources": resources, "publish_s": publish_s, "first_sync_bytes": first, "first_sync_s": first_s,
            "idle_sync_bytes": idle, "one_change_bytes": one_change}


# -- 3: rsync resume overhead -------------------------------------------------------
def bench_resume(work: Path, size: int = 50 * MB, cuts: int = 3) -> dict:
    from hub_sync.core.blobstore import BlobStore
    from hub_sync.core.errors import LinkError
    from hub_sync.hub.rsync_daemon import RsyncDaemon
    from hub_sync.client.rsync_transport import rsync_fetch

    store = BlobStore(work / "content", reserve_bytes=0)
    sha = store.put_bytes(os.urandom(size)).sha256      # video-like: incompressible
    daemon = RsyncDaemon(store.root, work / "run", "127.0.0.1", free_port())
    relay = CountingRelay(("127.0.0.1", daemon.port))
    url = f"rsync://127.0.0.1:{relay.port}/content"
    try:
        rsync_fetch(url, [sha], work / "baseline")          # one uncut transfer
        time.sleep(0.2)
        baseline = relay.up + relay.down
        relay.reset()
        staging = work / "staging"
        done_runs = 0
        for i in range(cuts):                                # cut at ~20 %, ~45 %, ~70 % of the file
            relay.cut_after = int(size * (0.2 + 0.25 * i)) - _partial_size(staging)
            try:
                rsync_fetch(url, [sha], staging, timeout_s=10)
            except LinkError:
                done_runs += 1
            time.sleep(0.2)
        relay.cut_after = None
        rsync_fetch(url, [sha], staging)
        time.sleep(0.2)
        total = relay.up + relay.down
        fetched = staging / sha[:2] / sha[2:]
        ok = fetched.stat().st_size == size and _sha256(fetched) == sha
    finally:
        relay.close()
        daemon.stop()
    return {"size": size, "baseline_bytes": baseline, "cut_runs": done_runs, "total_bytes": total,
            "resume_overhead": (total - baseline) / baseline, "intact": ok}


def _partial_size(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) if staging.exists() else 0


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            h.update(chunk)
    return h.hexdigest()


# -- 4: hub ingest rate -------------------------------------------------------------
def bench_ingest(work: Path, devices: int, per_device: int) -> dict:
    hub = Hub.init(work / "hub-ingest", reserve_mb=1)
    day = classroom_day(students=max(300, per_device // 30 + 1))
    signer = generate_key(work / "sim-device.pem")     # one key for all simulated devices: signing is not measured
    key = public_key_dict(signer)
    reg = Registry(hub.db)
    from hub_sync.hub.database import transaction

    with transaction(hub.db):
        for d in range(devices):
            reg.register(f"edge-sim-{d:04d}", SCHOOL, key)
    envelopes = []
    for d in range(devices):
        start = (d * 37) % (len(day) - per_device)
        evs = [UsageEvent(i + 1, *day[start + i][:3], day[start + i][3], day[start + i][4]) for i in range(per_device)]
        envelopes.append(seal("usage-batch", encode_batch(evs, f"edge-sim-{d:04d}", SCHOOL), signer))
    ingest, online = UsageIngest(hub.db), hub.online_signer
    t0 = time.perf_counter()
    for env in envelopes:
        seal_ack(ingest.ingest(env), online)
    elapsed = time.perf_counter() - t0
    stored = ingest.count()
    hub.close()
    return {"devices": devices, "events": stored, "seconds": elapsed, "events_per_s": stored / elapsed,
            "batch_bytes": sum(map(len, envelopes)) / devices}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--events-per-device", type=int, default=1000)
    ap.add_argument("--resume-mb", type=int, default=50)
    ap.add_argument("--channel-resources", type=int, default=20_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        t = time.perf_counter()
        usage = bench_usage_wire(work / "usage")
        try:
            content = bench_idle_content(work / "content")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:   # the content half is another module's
            print(f"content idle sync not measured: {exc}", file=sys.stderr)
            content = {"first_sync_bytes": -1, "idle_content_bytes": 0}
        idle_total = usage["idle_usage_bytes"] + content["idle_content_bytes"]
        resume = bench_resume(work / "resume", args.resume_mb * MB)
        ingest = bench_ingest(work / "ingest", args.devices, args.events_per_device)
        big = bench_big_channel(work / "big", args.channel_resources)
        print(f"{'measure':44} {'value':>14}")
        rows = [
            ("usage: events in a classroom day", usage["events"]),
            ("usage: batches sent", usage["batches"]),
            ("usage: TCP bytes (both ways, headers incl.)", usage["tcp_bytes"]),
            ("usage: HTTP body bytes (both ways)", usage["body_bytes"]),
            ("usage: wire bytes per event", f"{usage['wire_bytes_per_event']:.2f}"),
            ("xAPI JSON bytes per statement, plain", f"{usage['xapi_plain_per_event']:.1f}"),
            ("xAPI JSON bytes per statement, gzip -9", f"{usage['xapi_gzip_per_event']:.2f}"),
            ("idle usage sync: TCP bytes", usage["idle_usage_bytes"]),
            ("first content sync (5 files): TCP bytes", content["first_sync_bytes"]),
            ("idle content sync (edge sync): TCP bytes", content["idle_content_bytes"]),
            ("idle sync total: TCP bytes", idle_total),
            ("resume: file size (bytes)", resume["size"]),
            ("resume: uncut transfer TCP bytes", resume["baseline_bytes"]),
            ("resume: runs cut by the relay", resume["cut_runs"]),
            ("resume: TCP bytes, 3 cuts + final run", resume["total_bytes"]),
            ("resume: file intact (sha256)", resume["intact"]),
            ("resume: overhead vs uncut", f"{resume['resume_overhead']:.4f}"),
            ("ingest: devices x events", f"{ingest['devices']} x {ingest['events'] // max(ingest['devices'], 1)}"),
            ("ingest: signed batch bytes (mean)", f"{ingest['batch_bytes']:.0f}"),
            ("ingest: seconds (storage layer + ack)", f"{ingest['seconds']:.2f}"),
            ("ingest: events per second", f"{ingest['events_per_s']:.0f}"),
            ("big channel: resources", big["resources"]),
            ("big channel: hub publish (s)", f"{big['publish_s']:.1f}"),
            ("big channel: first sync TCP bytes", big["first_sync_bytes"]),
            ("big channel: first sync (s)", f"{big['first_sync_s']:.1f}"),
            ("big channel: idle sync TCP bytes", big["idle_sync_bytes"]),
            ("big channel: one added resource, TCP bytes", big["one_change_bytes"]),
            ("bench wall time (s)", f"{time.perf_counter() - t:.1f}"),
        ]
        for name, value in rows:
            print(f"{name:44} {value!s:>14}")
        print(f"wire_bytes_per_event={usage['wire_bytes_per_event']:.2f} idle_sync_bytes={idle_total} "
              f"resume_overhead={resume['resume_overhead']:.4f} ingest_events_per_s={ingest['events_per_s']:.1f} "
              f"idle_sync_bytes_20k={big['idle_sync_bytes']} one_change_bytes_20k={big['one_change_bytes']}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
