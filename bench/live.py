"""Live lessons (专递课堂) over a poor link: one lesson to a site with 1 viewer and a site with
30, each behind a 2 Mbit/s ``tc tbf`` WAN, both cut for 60 s mid-lesson.

    python3 bench/live.py [--minutes 10] [--cut-s 60] [--viewers 30] [--segment-s 2]

Needs root (network namespaces), ffmpeg and nginx. The hub and the publisher (ffmpeg's test
source, the real ladder: 640x360 at 450 kbit/s, 426x240 at 200, audio only) run in a namespace
of their own; each teaching point is an ``edge serve`` in its namespace with its LAN clients in
another (tests/fixtures/live.py). Viewers are HTTP clients on the LAN doing what a player does:
the master playlist, the media playlist every segment, each segment once.

Last line: ``wan_bytes_ratio_30_vs_1=<float> recording_gaps=<int> join_latency_s=<float> catchup_s=<float>``
(goals: <= 1.05, 0, <= 6, <= 60).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import httpx  # noqa: E402

from fixtures.lan import CLIENT_IPS  # noqa: E402
from fixtures.live import LESSON, LiveCounty  # noqa: E402
from hub_sync.core.processes import wait_until  # noqa: E402


class Viewer(threading.Thread):
    """One player on a site's LAN (in the clients' namespace, one keep-alive connection)."""

    def __init__(self, site, source: str, stop: threading.Event, segment_s: float) -> None:
        super().__init__(daemon=True)
        self.site, self.source, self.stop, self.segment_s = site, source, stop, segment_s
        self.join_s: float | None = None
        self.seen: set[str] = set()
        self.errors = 0

    def run(self) -> None:
        base = f"{self.site.server.base}/live/{LESSON}/"
        with self.site.lan.clients.inside(), httpx.Client(
                transport=httpx.HTTPTransport(local_address=self.source), timeout=10, trust_env=False) as client:
            started = time.monotonic()
            while not self.stop.is_set():
                try:
                    if self.join_s is None:
                        client.get(base + "master.m3u8").raise_for_status()
                    uris = [u for u in client.get(base + "site.m3u8").text.splitlines() if u.endswith(".ts")]
                    todo = [u for u in uris if u not in self.seen]
                    if self.join_s is None:  # a player starts 3 segments behind the newest (EXT-X-START)
                        for u in uris[:-3]:
                            self.seen.add(u)
                        todo = uris[-3:]
                    for u in todo:
                        client.get(base + u).raise_for_status()
                        self.seen.add(u)
                        if self.join_s is None:
                            self.join_s = time.monotonic() - started
                except httpx.HTTPError:
                    self.errors += 1
                self.stop.wait(self.segment_s / 2)


def status(site) -> dict:
    try:
        return json.loads((site.data / "live" / LESSON / "status.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def hub_live_index(county) -> int:
    """The newest segment index the hub holds (what "live" is)."""
    folder = county.relay.folder(LESSON) / "v500"
    return max((int(p.stem) for p in folder.glob("*.ts")), default=-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--cut-s", type=float, default=60.0)
    ap.add_argument("--viewers", type=int, default=30)
    ap.add_argument("--segment-s", type=float, default=2.0)
    ap.add_argument("--height", default="360")
    ap.add_argument("--kbps", default="450,200")
    args = ap.parse_args()
    lesson_s = args.minutes * 60
    stop = threading.Event()
    viewers: list[Viewer] = []
    with tempfile.TemporaryDirectory() as tmp:
        county = LiveCounty(Path(tmp))
        try:
            county.serve_hub()
            sites = [county.add_site(), county.add_site()]
            for site in sites:
                site.shape("2mbit")
                site.serve()
            start_bytes = [s.wan_rx_bytes() for s in sites]
            publisher = county.publish(lesson_s, segment_s=args.segment_s, height=args.height, kbps=args.kbps)
            t0 = time.monotonic()
            wait_until(lambda: all(status(s).get("held_index", -1) >= 3 for s in sites), 120, "both sites to hold the lesson")
            for site, n in ((sites[0], 1), (sites[1], args.viewers)):
                for i in range(n):
                    viewers.append(Viewer(site, CLIENT_IPS[i % len(CLIENT_IPS)], stop, args.segment_s))
            for v in viewers:
                v.start()
            # the cut: both sites at once, in the middle of the lesson
            cut_at = max(0.0, lesson_s / 2 - args.cut_s / 2)
            wait_until(lambda: time.monotonic() - t0 >= cut_at, lesson_s, "the middle of the lesson", interval_s=0.5)
            held_at_cut = [status(s)["held_index"] for s in sites]
            for s in sites:
                s.cut()
            time.sleep(args.cut_s)  # the cut's length is the benchmark's input, not a wait for a condition
            stalled = [status(s)["state"] for s in sites]
            for s in sites:
                s.restore()
            restored = time.monotonic()
            live_at_restore = hub_live_index(county)
            catchup = []
            for s in sites:
                wait_until(lambda s=s: status(s).get("held_index", -1) >= live_at_restore, 600, "the site to catch up",
                           interval_s=0.2)
                catchup.append(time.monotonic() - restored)
            wait_until(lambda: not publisher.running(), lesson_s + 120, "the lesson to end", interval_s=0.5)
            wait_until(lambda: all(status(s).get("recording") for s in sites), 300, "the recordings", interval_s=0.5)
            last = status(sites[1])["live_index"]
            wait_until(lambda: all(len(v.seen) > last for v in viewers), 60, "the viewers to reach the end")
            stop.set()
            for v in viewers:
                v.join(30)
            wan = [s.wan_rx_bytes() - b for s, b in zip(sites, start_bytes)]
            rows = []
            for s, n, w, c, h, st in zip(sites, (1, args.viewers), wan, catchup, held_at_cut, stalled):
                st_now = status(s)
                gaps = st_now["live_index"] + 1 - st_now["held"]
                joins = [v.join_s for v in viewers if v.site is s and v.join_s is not None]
                rows.append((n, w, gaps, c, max(joins), st_now["held"], h, st))
        finally:
            stop.set()
            for v in viewers:
                v.join(30)
            county.close()
    print(f"lesson {args.minutes:g} min, {args.segment_s:g} s segments, cut {args.cut_s:g} s, WAN 2 Mbit/s tbf")
    print(f"{'viewers':>8} {'wan_bytes':>12} {'segments':>9} {'gaps':>5} {'held@cut':>9} {'state in cut':>13} {'catchup_s':>10} {'join_max_s':>11}")
    for n, w, gaps, c, j, held, h, st in rows:
        print(f"{n:>8} {w:>12,} {held:>9} {gaps:>5} {h:>9} {st:>13} {c:>10.1f} {j:>11.3f}")
    ratio = rows[1][1] / rows[0][1]
    print(f"wan_bytes_ratio_30_vs_1={ratio:.3f} recording_gaps={max(r[2] for r in rows)} "
          f"join_latency_s={max(r[4] for r in rows):.3f} catchup_s={max(r[3] for r in rows):.1f}")


if __name__ == "__main__":
    main()
