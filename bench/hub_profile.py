"""Where a served hub's time goes, for the benchmarks: CPU seconds by kind of process over a
run (``CpuMeter``) and ``py-spy`` samples of a gunicorn worker (``profile``, summarised by
``summarise_profile``)."""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil

__all__ = ["CpuMeter", "profile", "summarise_profile", "worker_pids"]


def worker_pids(server) -> list[int]:
    """The gunicorn workers under a served hub (the master's children that run the app)."""
    try:
        master = psutil.Process(server.pid)
        return [p.pid for p in master.children(recursive=True) if "nginx" not in p.name() and "rsync" not in p.name()]
    except psutil.Error:
        return []


class CpuMeter:
    """CPU seconds of this run's processes (hub workers, PostgreSQL, nginx, the senders) and
    of the whole machine between start() and stop(); the rest is other people's work."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots  # kind -> pids whose process trees are that kind (nginx found by name)
        self.totals: dict[str, float] = collections.Counter()

    def snapshot(self) -> dict[int, tuple[str, float]]:
        out = {}
        for kind, pids in self.roots.items():
            for pid in pids:
                try:
                    root = psutil.Process(pid)
                    for p in [root, *root.children(recursive=True)]:
                        t = p.cpu_times()
                        out[p.pid] = ("nginx" if "nginx" in p.name() else kind, t.user + t.system)
                except psutil.Error:
                    pass
        return out

    @staticmethod
    def _busy() -> float:
        m = psutil.cpu_times()
        return m.user + m.system + m.nice + getattr(m, "irq", 0) + getattr(m, "softirq", 0)

    def start(self) -> None:
        self.before, self.wall, self.machine = self.snapshot(), time.monotonic(), self._busy()
        self.iowait, self.mine = getattr(psutil.cpu_times(), "iowait", 0), os.times()

    def stop(self) -> None:
        self.wall = time.monotonic() - self.wall
        for pid, (kind, cpu) in self.snapshot().items():
            self.totals[kind] += cpu - self.before.get(pid, (kind, 0.0))[1]
        mine = os.times()  # this process and its reaped children: the sender processes
        self.totals["senders"] = sum(mine[:4]) - sum(self.mine[:4])
        self.totals["machine"] = self._busy() - self.machine
        self.totals["iowait"] = getattr(psutil.cpu_times(), "iowait", 0) - self.iowait

    def line(self) -> str:
        kinds = ("hub", "postgres", "nginx", "senders")
        others = self.totals["machine"] - sum(self.totals.get(k, 0) for k in kinds)
        return (f"CPU s over {self.wall:.0f} s wall (2 cores: {2 * self.wall:.0f}): "
                + ", ".join(f"{k} {self.totals.get(k, 0):.0f}" for k in kinds)
                + f", other work on the machine {others:.0f}; iowait {self.totals['iowait']:.0f}")


def profile(pid: int, seconds: float, out: Path, gil: bool) -> subprocess.Popen | None:
    """``py-spy record`` of one hub worker (raw collapsed stacks), or None without py-spy. With
    ``gil`` only the thread holding Python's lock is sampled (where the worker's CPU goes),
    without it every busy thread (where requests wait: the database, locks)."""
    spy = shutil.which("py-spy")
    if not spy or seconds <= 0:
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                             "--format", "raw", "--nonblocking", *(["--gil"] if gil else []), "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(paths: list[Path], top: int = 12, request: str = "usage_api.py") -> list[str]:
    """Where a worker's samples were (request threads only): by leaf function, and by the
    hub's own frames (and its database drivers') they passed through."""
    lines = [line for p in paths if p.exists() for line in p.read_text().splitlines()]
    leaf, inclusive, total = collections.Counter(), collections.Counter(), 0
    for line in lines:
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not any(request in f for f in frames):
            continue  # idle threads waiting for work, the master loop
        total += int(n)
        leaf[frames[-1]] += int(n)
        for f in {f for f in frames if "hub_sync" in f or "sqlalchemy" in f.split("(")[0] or "psycopg" in f}:
            inclusive[f] += int(n)
    if not total:
        return ["  (no request samples)"]
    out = [f"  {total} samples in {request}'s request; leaf functions:"]
    out += [f"    {n / total:6.1%}  {f}" for f, n in leaf.most_common(top)]
    out.append("  frames passed through (inclusive):")
    out += [f"    {n / total:6.1%}  {f}" for f, n in inclusive.most_common(top)]
    return out
