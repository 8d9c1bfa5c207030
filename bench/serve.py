#!/usr/bin/env python3
"""Benchmark: the appliance serving files and its catalogue API, against bare nginx.

In one run, in a temporary folder:

1. makes a data folder with 4 files of 64 MiB (random bytes, made now), 10,000
   catalogued resources (curriculum metadata cycled from the sample library,
   numbered) and 200 catalogued pictures each of 20 KB and of 200 KB (lesson assets);
2. starts the appliance with the real CLI (``school-edge edge serve``: its nginx
   front on the port, gunicorn behind it on a unix socket) and a bare Debian
   ``nginx`` (non-daemon, own config, ``sendfile on``, ``root`` = the same
   ``content/`` folder) on free loopback ports;
3. files: ``wrk`` with 50 connections against bare nginx and the appliance in turn
   (two rounds each, alternating), on the URLs the catalogue hands out
   (``/content/<sha>/<name>``): each request a random 4 MiB ``Range`` of a random
   big file (serve ratio = appliance bytes/s / nginx bytes/s), then whole 20 KB and
   200 KB files (small ratio = appliance req/s / nginx req/s, the worse size);
4. catalogue API: 50 connections searching (``q`` in Chinese, filters, pages of
   the default size), each pausing 0-500 ms after every answer like a tablet in a
   class, while 300 slow connections (half a request header, then nothing) are held
   open (the reported p95), then firing back to back (saturation, shown too);
   p95 latency from wrk's histogram;
5. idle memory of everything that serves (nginx master and workers, gunicorn master
   and workers: the process tree of ``edge serve``), after start-up and again two
   seconds after the load (the larger is reported). ``idle_rss_mb`` is the
   physical memory of the process tree: its anonymous memory by PSS (the forked
   worker's pages still shared with the master counted once) plus each mapped
   file's resident pages counted once (the larger of the processes' resident parts
   of that file, a slight underestimate), because the VmRSS sum counts the shared
   pages twice and a plain PSS sum divides shared libraries with unrelated
   processes on the machine; both sums are printed next to it.

Prints a table, then last ``serve_ratio_vs_nginx=<f> api_p95_ms=<f> idle_rss_mb=<f> small_ratio_vs_nginx=<f>``.
Needs ``nginx`` and ``wrk`` (``scripts/install.sh`` installs both). About two minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from edge_agent.appliance import Appliance
from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.config import EdgeConfig
from edge_agent.demo.sample_library import SAMPLES
from local_server import free_port, start, start_edge, stop

MIB = 1024 * 1024

WRK_SCRIPT = """
local paths = {%(paths)s}
local size = %(size)d
local chunk = %(chunk)d
local queries = {%(queries)s}
math.randomseed(%(seed)d)
request = function()
  if #queries > 0 then
    return wrk.format("GET", queries[math.random(#queries)])
  end
  if chunk == 0 then
    return wrk.format("GET", paths[math.random(#paths)])
  end
  local start = math.random(0, size - chunk)
  return wrk.format("GET", paths[math.random(#paths)], {["Range"] = "bytes=" .. start .. "-" .. (start + chunk - 1)})
end
%(delay)s
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %%d %%d %%d %%d %%.3f %%.3f %%.3f\\n", summary.bytes, summary.duration, summary.requests, bad,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


SMALL_SIZES = {"20k": 20 * 1000, "200k": 200 * 1000}  # lesson assets: pictures, scripts, sound clips
SMALL_COUNT = 200  # files of each small size


def make_library(data: Path, n_files: int, file_mib: int, n_resources: int) -> list[tuple[str, int]]:
    """Big files in the store plus ``n_resources`` catalogued resources and ``SMALL_COUNT``
    catalogued pictures of each small size; returns (sha, size) of the big files."""
    app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 0, "advertise": False}))
    try:
        big = []
        for i in range(n_files):
            src = data.parent / f"video-{i}.mp4"
            with src.open("wb") as out:
                for _ in range(file_mib):
                    out.write(os.urandom(MIB))
            blob = app.store.put_file(src)
            src.unlink()
            big.append((blob.sha256, blob.size))
        small = app.store.put_bytes("<h1>示例</h1>".encode())
        resources = []
        for n in range(n_resources):
            subject, grade, edition, chapter, title, kind = SAMPLES[n % len(SAMPLES)]
            sha, size = big[n % len(big)] if kind == "video" else (small.sha256, small.size)
            resources.append(Resource(
                id=f"bench-{n:05d}", title=f"{title}（{n // len(SAMPLES) + 1}）", kind=kind,
                stage="初中" if grade in ("七年级", "八年级", "九年级") else "小学", grade=grade, subject=subject,
                edition=edition, chapter=chapter, description=f"{edition}{subject}{grade}：{chapter}",
                source="county", licence="CC BY-NC 4.0", files=[ResourceFile("index.html", sha, size, "text/html")]))
        for i, (sha, size) in enumerate(big):
            resources.append(Resource(id=f"bench-video-{i}", title=f"微课视频 {i}", kind="video", stage="小学",
                                      grade="三年级", subject="科学", edition="教科版", chapter="第一单元",
                                      files=[ResourceFile("video.mp4", sha, size, "video/mp4")]))
        for label, size in SMALL_SIZES.items():
            for i in range(SMALL_COUNT):
                blob = app.store.put_bytes(os.urandom(size))
                resources.append(Resource(id=f"bench-{label}-{i:03d}", title=f"插图 {label} {i}", kind="image", stage="小学",
                                          grade="三年级", subject="科学", edition="教科版", chapter="第一单元",
                                          files=[ResourceFile("picture.png", blob.sha256, size, "image/png")]))
        app.catalogue.upsert_many(resources)  # the same path a sync takes: search indexes included
        return big
    finally:
        app.close()


def small_files(data: Path, label: str) -> list[str]:
    """The hashes of the catalogued small files of one size."""
    app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 0, "advertise": False}))
    try:
        return [app.catalogue.get(f"bench-{label}-{i:03d}").files[0].sha256 for i in range(SMALL_COUNT)]
    finally:
        app.close()


def hold_slow_connections(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send half a request header and then nothing (slowloris)."""
    held = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    return held


def nginx_config(tmp: Path, root: Path, port: int) -> Path:
    conf = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""  # the store's files are 0600, like any private data
    conf.write_text(f"""{user}daemon off;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
""")
    return conf


def wrk(url: str, tmp: Path, seconds: float, connections: int, paths: list[str] = (), size: int = 0,
        chunk: int = 0, queries: list[str] = (), think_ms: int = 0) -> dict:
    """One wrk run; ``think_ms`` > 0 makes each connection pause 0..think_ms between requests."""
    script = tmp / "wrk.lua"
    delay = f"delay = function() return math.random(0, {think_ms}) end" if think_ms else ""
    script.write_text(WRK_SCRIPT % {
        "delay": delay,
        "paths": ", ".join(json.dumps(p) for p in paths), "size": size, "chunk": chunk,
        "queries": ", ".join(json.dumps(q, ensure_ascii=True) for q in queries), "seed": random.randrange(1 << 30)})
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    b, dur_us, reqs, bad, p50, p95, p99 = line.split()[1:]
    return {"bytes": int(b), "seconds": int(dur_us) / 1e6, "requests": int(reqs), "errors": int(bad),
            "p50_ms": float(p50), "p95_ms": float(p95), "p99_ms": float(p99)}


def tree_memory_mb(pid: int) -> dict[str, float]:
    """Memory of ``pid`` and all its descendants, in MiB: ``vmrss`` and ``pss`` (sums
    over the processes) and ``physical`` (anonymous PSS plus file pages counted once)."""
    pids = tree_pids(pid)
    totals = {"VmRSS:": 0, "Pss:": 0, "Pss_Anon:": 0}
    file_rss: dict[str, dict[int, int]] = {}  # mapped file -> pid -> resident kB
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text() + Path(f"/proc/{p}/smaps_rollup").read_text()
            smaps = Path(f"/proc/{p}/smaps").read_text()
        except OSError:  # exited meanwhile
            continue
        for line in status.splitlines():
            fields = line.split()
            if fields and fields[0] in totals:
                totals[fields[0]] += int(fields[1])
        path = None
        for line in smaps.splitlines():
            fields = line.split()
            if "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header line
                path = fields[5] if len(fields) > 5 and fields[5].startswith("/") else None
            elif path and fields[0] == "Rss:":
                per_pid = file_rss.setdefault(path, {})
                per_pid[p] = per_pid.get(p, 0) + int(fields[1])
    # the worker maps the master's libraries: count each file once (the larger resident part)
    file_kb = sum(max(per_pid.values()) for per_pid in file_rss.values())
    return {"vmrss": totals["VmRSS:"] / 1024, "pss": totals["Pss:"] / 1024,
            "physical": (totals["Pss_Anon:"] + file_kb) / 1024}


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def api_queries(count: int = 400, seed: int = 7) -> list[str]:
    """What a class of tablets and a teacher ask: 2-4 character pieces of real titles
    (Chinese, so most are two-character substring searches), filters, later pages."""
    from urllib.parse import urlencode

    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        subject, grade, edition, chapter, title, kind = rnd.choice(SAMPLES)
        words = [w for w in title.split() if len(w) >= 2] or [title]
        word = rnd.choice(words)
        n = rnd.choice((2, 2, 3, 4))
        start = rnd.randrange(max(1, len(word) - n + 1))
        params = {}
        mode = rnd.random()
        if mode < 0.6:
            params["q"] = word[start:start + n]
        if 0.3 < mode < 0.9:
            params.update(rnd.choice([{"subject": subject}, {"subject": subject, "grade": grade},
                                      {"edition": edition}, {"kind": kind}]))
        if rnd.random() < 0.2:
            params["offset"] = str(rnd.choice((50, 100, 200)))
        out.append("/api/v1/resources?" + urlencode(params))
    return out + ["/api/v1/status", "/api/v1/facets"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8, help="length of each wrk run")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--mib", type=int, default=64, help="size of each big file")
    parser.add_argument("--chunk-mib", type=int, default=4, help="size of each Range request")
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--think-ms", type=int, default=500, help="API clients pause 0..N ms between requests")
    parser.add_argument("--workers", type=int, default=None, help="override the appliance's workers setting")
    parser.add_argument("--threads", type=int, default=None, help="override the appliance's threads setting")
    parser.add_argument("--slow", type=int, default=300, help="slow connections held open during the API run")
    parser.add_argument("--skip-api", action="store_true", help="only the file streaming comparison")
    args = parser.parse_args()
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed: run scripts/install.sh")

    tmp = Path(tempfile.mkdtemp(prefix="school-edge-bench-"))
    servers = []
    try:
        data = tmp / "data"
        t0 = time.monotonic()
        big = make_library(data, args.files, args.mib, args.resources)
        print(f"library: {args.files} x {args.mib} MiB + {args.resources} resources in {time.monotonic() - t0:.1f}s",
              flush=True)

        overrides = {k: v for k, v in (("workers", args.workers), ("threads", args.threads)) if v is not None}
        (data / "settings.json").write_text(json.dumps(overrides))
        edge_port, nginx_port = free_port(), free_port()
        edge_base, nginx_base = f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{nginx_port}"
        edge = start_edge(data, edge_port)
        servers.append(edge)
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        servers.append(start([nginx_bin, "-c", str(nginx_config(tmp, data / "content", nginx_port)), "-p", str(tmp)],
                             nginx_base + "/"))
        time.sleep(1)
        mem_start = tree_memory_mb(edge.pid)

        size = min(s for _, s in big)
        chunk = args.chunk_mib * MIB
        edge_paths = [f"/content/{sha}/video.mp4" for sha, _ in big]  # the URL the catalogue API hands out
        nginx_paths = [f"/{sha[:2]}/{sha[2:]}" for sha, _ in big]
        for e, n in zip(edge_paths, nginx_paths):  # page cache warm for both
            assert httpx.get(edge_base + e, headers={"Range": "bytes=0-0"}, timeout=60).status_code == 206
            assert httpx.get(nginx_base + n, headers={"Range": "bytes=0-0"}, timeout=60).status_code == 206

        runs = {"nginx": [], "appliance": []}
        for _ in range(2):
            runs["nginx"].append(wrk(nginx_base, tmp, args.seconds, args.clients, nginx_paths, size, chunk))
            runs["appliance"].append(wrk(edge_base, tmp, args.seconds, args.clients, edge_paths, size, chunk))
        small_runs: dict[str, dict[str, list[dict]]] = {}
        for label in SMALL_SIZES:
            shas = small_files(data, label)
            small_runs[label] = {"nginx": [], "appliance": []}
            for _ in range(2):
                small_runs[label]["nginx"].append(wrk(nginx_base, tmp, args.seconds, args.clients,
                                                      [f"/{sha[:2]}/{sha[2:]}" for sha in shas]))
                small_runs[label]["appliance"].append(wrk(edge_base, tmp, args.seconds, args.clients,
                                                          [f"/content/{sha}/picture.png" for sha in shas]))
        no_run = {"bytes": 0, "seconds": 1, "requests": 0, "errors": 0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
        api = api_flat_out = no_run
        if not args.skip_api:
            # a slowloris crowd held open while the class searches (nginx cuts them after request_timeout_s)
            slow = hold_slow_connections(edge_port, args.slow)
            try:
                api = wrk(edge_base, tmp, args.seconds, args.clients, queries=api_queries(), think_ms=args.think_ms)
            finally:
                for conn in slow:
                    conn.close()
            api_flat_out = wrk(edge_base, tmp, args.seconds, args.clients, queries=api_queries())
        time.sleep(2)
        mem_after = tree_memory_mb(edge.pid)

        def rate(name: str) -> float:
            return sum(r["bytes"] for r in runs[name]) / sum(r["seconds"] for r in runs[name])

        ratio = rate("appliance") / rate("nginx")
        print(f"\n{'':34} {'MiB/s':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
        for name in ("nginx", "appliance"):
            rs = runs[name]
            reqs = sum(r["requests"] for r in rs) / sum(r["seconds"] for r in rs)
            print(f"{name + f' ({args.clients} x Range {args.chunk_mib} MiB)':34} {rate(name) / MIB:9.1f} {reqs:8.1f} "
                  f"{max(r['p50_ms'] for r in rs):8.1f} {max(r['p95_ms'] for r in rs):8.1f} {sum(r['errors'] for r in rs):7d}")
        def req_rate(rs: list[dict]) -> float:
            return sum(r["requests"] for r in rs) / sum(r["seconds"] for r in rs)

        small_ratios = {}
        for label, by_server in small_runs.items():
            small_ratios[label] = req_rate(by_server["appliance"]) / req_rate(by_server["nginx"])
            for name in ("nginx", "appliance"):
                rs = by_server[name]
                print(f"{name + f' ({args.clients} x {label} files)':34} "
                      f"{sum(r['bytes'] for r in rs) / sum(r['seconds'] for r in rs) / MIB:9.1f} {req_rate(rs):8.1f} "
                      f"{max(r['p50_ms'] for r in rs):8.1f} {max(r['p95_ms'] for r in rs):8.1f} "
                      f"{sum(r['errors'] for r in rs):7d}")
        for label, r in ((f"API, {args.clients} tablets, {args.slow} slow, 0-{args.think_ms} ms", api),
                         (f"API, {args.clients} clients flat out", api_flat_out)):
            print(f"{label:34} {r['bytes'] / r['seconds'] / MIB:9.1f} {r['requests'] / r['seconds']:8.1f} "
                  f"{r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['errors']:7d}")
        print("small files, appliance req/s / nginx req/s: " + ", ".join(f"{k} {v:.3f}" for k, v in small_ratios.items()))
        print("idle memory of everything that serves (nginx master + workers, gunicorn master + worker(s)), "
              "after start / after the load:")
        for key, label in (("physical", "physical: anonymous PSS + mapped files once (reported)"),
                           ("vmrss", "VmRSS sum (master's pages shared with the worker twice)"),
                           ("pss", "PSS sum (libraries shared with other programs divided)")):
            print(f"  {label:56} {mem_start[key]:6.1f} / {mem_after[key]:6.1f} MiB")
        print()
        small_errors = any(r["errors"] for by_server in small_runs.values() for rs in by_server.values() for r in rs)
        if any(r["errors"] for rs in runs.values() for r in rs) or api["errors"] or api_flat_out["errors"] or small_errors:
            print("warning: some requests failed (see errors column)")
        print(f"serve_ratio_vs_nginx={ratio:.3f} api_p95_ms={api['p95_ms']:.1f} "
              f"idle_rss_mb={max(mem_start['physical'], mem_after['physical']):.1f} "
              f"small_ratio_vs_nginx={min(small_ratios.values()):.3f}")
        return 0
    finally:
        for server in reversed(servers):
            stop(server)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
