"""Benchmark of an appliance software update over a school's thin link, in one run
(about five minutes; needs root for the network namespace and ``tc``).

    python3 bench/update.py [--kill-cycles 112] [--rate 2mbit]

1. Two real releases are built (``firmware.build.build_release``: the application wheel
   and every dependency) that differ in one module (``edge_agent/sync/scheduler.py``).
2. A county hub (``school-edge hub serve``: HTTP and its rsync daemon) listens on the host's
   end of a veth pair; the appliance's end is in a network namespace of its own, shaped to
   ``--rate`` with ``tc tbf`` each way. The appliance is provisioned from the hub, installs
   the first release from a stick (``hub firmware export``, verified with the trusted
   firmware key) and serves it under its supervisor (``school-edge firmware run``).
3. The hub publishes the second release; ``school-edge edge update --force`` runs in the
   appliance's namespace: the signed rollout rules, only the files the installed release
   lacks (the changed application wheel, as an rsync delta against the installed copy),
   the installer (idle slot, database backup, trial on a local port, health check, commit,
   switch). Bytes moved are rsync's and HTTP's received bytes of the release's files.
4. Switch vs cold start: from the moment ``current`` points at the new slot to the LAN port
   answering with the new version, against the supervisor started cold on the same version
   (median of three each).
5. ``kill -9`` cycles: installs back and forth between the two versions (the older one signed
   as a downgrade) with ``SCHOOL_EDGE_FIRMWARE_FAULT`` SIGKILLing the installer, or the
   process serving, as each step starts, in turn for every step; after each, the supervisor
   must serve one of the two versions within a minute and the database must pass
   ``PRAGMA integrity_check``; a cycle where either fails counts as bricked.

The last line is machine-readable:
``update_bytes_ratio=<float> switch_ratio_vs_cold_start=<float> kill9_cycles_bricked=<int>``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from edge_agent.appliance import Appliance  # noqa: E402
from edge_agent.config import EdgeConfig  # noqa: E402
from edge_agent.sync.content_sync import enroll_now  # noqa: E402
from edge_agent.sync.firmware_sync import stage_stick_release, update_firmware  # noqa: E402
from firmware.build import build_release, copy_source  # noqa: E402
from firmware.installer import STEPS  # noqa: E402
from firmware.slots import current_slot  # noqa: E402
from firmware.state import firmware_root, load_state  # noqa: E402
from hub_sync.core.processes import SupervisedProcess, free_port, wait_until  # noqa: E402
from hub_sync.formats.firmware_release import MANIFEST_NAME, SIGNATURE_NAME, sign_release  # noqa: E402
from hub_sync.hub import Hub  # noqa: E402
from hub_sync.hub.firmware_repo import export_release, firmware_signer, publish_release  # noqa: E402
from local_server import start  # noqa: E402  (bench/ is the script's folder)
from provisioning.apply import apply_bundle  # noqa: E402
from provisioning.bundle import make_bundle  # noqa: E402

CLI = [sys.executable, "-m", "edge_agent.cli"]
SCHOOL = "4401020301"
OLD, NEW = "1.0.0", "1.0.1"
SERVE_TIMEOUT_S = 60.0
FAULT_ENV = "SCHOOL_EDGE_FIRMWARE_FAULT"


# -- the shaped link ------------------------------------------------------------------
class ShapedLink:
    """A namespace for the appliance, a veth pair to the host (the hub) shaped with tbf."""

    def __init__(self, rate: str) -> None:
        tag = secrets.token_hex(3)
        self.ns, self.host_if, self.edge_if = f"se-upd-{tag}", f"seu{tag}", f"sev{tag}"
        used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        net = next(n for n in range(10, 250) if f"10.251.{n}." not in used)
        self.hub_ip, self.edge_ip = f"10.251.{net}.1", f"10.251.{net}.2"
        self._ip("netns", "add", self.ns)
        try:
            self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.edge_if)
            self._ip("link", "set", self.edge_if, "netns", self.ns)
            self._ip("addr", "add", f"{self.hub_ip}/24", "dev", self.host_if)
            self._ip("link", "set", self.host_if, "up")
            for args in (("addr", "add", f"{self.edge_ip}/24", "dev", self.edge_if), ("link", "set", self.edge_if, "up"),
                         ("link", "set", "lo", "up")):
                self._ip("netns", "exec", self.ns, "ip", *args)
            for where, dev in (([], self.host_if), (["ip", "netns", "exec", self.ns], self.edge_if)):
                subprocess.run([*where, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate,
                                "burst", "32kbit", "latency", "400ms"], check=True, capture_output=True)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    def inside(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def close(self) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


# -- set-up ---------------------------------------------------------------------------
def build_releases(work: Path) -> tuple[Path, Path, float]:
    """The two releases (the second changes one module); returns their folders and the build time."""
    began = time.monotonic()
    # one snapshot of the checkout for both builds: a tree others edit meanwhile would add differences
    source = work / "source"
    source.mkdir()
    copy_source(REPO, source, OLD)
    build_release(OLD, work / "release-old", source=source)

    def one_module(src: Path) -> None:
        module = src / "edge_agent" / "sync" / "scheduler.py"
        module.write_text(module.read_text("utf-8") + "\n# bench: the one module this release changes\n", "utf-8")

    build_release(NEW, work / "release-new", source=source, patch=one_module)
    return work / "release-old", work / "release-new", time.monotonic() - began


def appliance_settings(data: Path, port: int) -> None:
    # no background sync during the run (the bench drives every update), no nginx, no zeroconf
    (data / "settings.json").write_text(json.dumps({"host": "127.0.0.1", "port": port, "front": "none",
                                                    "advertise": False, "free_space_reserve_mb": 1,
                                                    "sync_bwlimit_kbps": 0, "sync_interval_s": 86400,
                                                    "sync_window": "03:00-03:01"}))


def serving_version(port: int) -> str | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=1.0)
        return answer.json().get("version") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def start_supervisor(data: Path, port: int, version: str) -> tuple[SupervisedProcess, float]:
    """``school-edge firmware run`` until the LAN port answers ``version``; returns it and the seconds taken."""
    began = time.monotonic()
    sup = SupervisedProcess([*CLI, "firmware", "run", "--data", str(data)], cwd=REPO, log=data.parent / "supervisor.log")
    wait_until(lambda: serving_version(port) == version, SERVE_TIMEOUT_S, f"{version} serving", 0.02)
    return sup, time.monotonic() - began


def db_ok(data: Path) -> bool:
    for db in [data / "edge.db", *data.glob("*.db")]:
        if db.is_file():
            with sqlite3.connect(db) as conn:
                if conn.execute("pragma integrity_check").fetchone()[0] != "ok":
                    return False
    return True


# -- the measured parts -------------------------------------------------------------------
def update_over_link(link: ShapedLink, data: Path, port: int) -> dict:
    """``edge update --force`` in the appliance's namespace; bytes moved and the switch-to-serving time."""
    root = firmware_root(data)
    before = current_slot(root)
    for _attempt in range(3):  # the served appliance's own sync job may hold the sync lock for a moment
        log = data.parent / "update.log"
        with log.open("w") as out:
            proc = subprocess.Popen(link.inside(*CLI, "edge", "update", "--data", str(data), "--force"), cwd=REPO,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        began = time.monotonic()

        def switched(proc=proc, log=log) -> float | None:
            if current_slot(root) != before:
                return time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            return None

        try:
            switch_at = wait_until(switched, 900, "the switch", 0.005)
            break
        except RuntimeError as exc:
            if "another sync" not in str(exc):
                raise SystemExit(f"edge update failed:\n{exc}") from None
            time.sleep(2)
    served = wait_until(lambda: serving_version(port) == NEW and time.monotonic(), SERVE_TIMEOUT_S, "new version", 0.02)
    proc.wait(120)
    output = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"edge update failed:\n{output}")
    moved, size = map(int, re.search(r"\((\d+) / (\d+) bytes moved\)", output).groups())
    return {"moved": moved, "size": size, "update_s": switch_at - began, "switch_to_serving_s": served - switch_at}


def kill_cycles(data: Path, port: int, releases: dict[str, Path], cycles: int) -> tuple[int, list[str]]:
    """Installs killed at every step in turn (installer, then the serving process); returns
    (bricked cycles, notes)."""
    bricked, notes = 0, []
    for i in range(cycles):
        who = "installer" if (i // len(STEPS)) % 2 == 0 else "service"
        step = STEPS[i % len(STEPS)]
        target = OLD if load_state(firmware_root(data)).version == NEW else NEW
        env = {**os.environ, FAULT_ENV: f"{who}:{step}"}
        subprocess.run([*CLI, "firmware", "install", "--data", str(data), str(releases[target])], cwd=REPO, env=env,
                       capture_output=True, timeout=300)
        try:
            wait_until(lambda: serving_version(port) in (OLD, NEW), SERVE_TIMEOUT_S, "a version serving", 0.1)
            ok = db_ok(data)
        except TimeoutError:
            ok = False
        if not ok:
            bricked += 1
            notes.append(f"cycle {i} ({who}:{step}) bricked")
    return bricked, notes


def signed_copy(hub: Hub, release: Path, out: Path, downgrade: bool) -> Path:
    shutil.copytree(release, out)
    (out / SIGNATURE_NAME).write_bytes(sign_release((out / MANIFEST_NAME).read_bytes(), firmware_signer(hub), downgrade))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kill-cycles", type=int, default=16 * len(STEPS))  # 112: the issue asks for at least 100
    parser.add_argument("--rate", default="2mbit")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("tc"):
        raise SystemExit("bench/update.py needs root, ip netns and tc (the shaped link)")
    work = Path(tempfile.mkdtemp(prefix="bench-update-"))
    link = ShapedLink(args.rate)
    servers: list[SupervisedProcess] = []
    try:
        old, new, build_s = build_releases(work)
        hub = Hub.init(work / "hub", reserve_mb=1)
        hub_port, rsync_port, lan_port = free_port(), free_port(), free_port()
        hub_url = f"http://{link.hub_ip}:{hub_port}"
        make_bundle(hub, SCHOOL, "红星小学", hub_url, f"rsync://{link.hub_ip}:{rsync_port}/content", work / "bundle")
        servers.append(start([*CLI, "hub", "serve", "--data", str(hub.data_dir), "--host", link.hub_ip, "--port",
                              str(hub_port), "--rsync-port", str(rsync_port)], f"{hub_url}/api/v1/hub/status"))
        data = work / "edge"
        app = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False}))
        apply_bundle(app, work / "bundle")
        appliance_settings(data, lan_port)
        enroll_now(app)
        # the first release arrives on a stick (the appliance learns the firmware key from the hub's metadata)
        publish_release(hub, old)
        update_firmware(app, allow_download=False, install=False)
        stick = export_release(hub, OLD, work / "stick" / "school-edge" / "firmware" / OLD)
        stage_stick_release(app, stick)
        app.close()
        sup, _ = start_supervisor(data, lan_port, OLD)
        servers.append(sup)
        publish_release(hub, new)
        up = update_over_link(link, data, lan_port)
        # cold start of the same (new) version, three times; the switch likewise (back and forth)
        cold = []
        for _ in range(3):
            sup.stop()
            sup, seconds = start_supervisor(data, lan_port, NEW)
            servers.append(sup)
            cold.append(seconds)
        signed = {OLD: signed_copy(hub, old, work / "signed-old", downgrade=True),
                  NEW: signed_copy(hub, new, work / "signed-new", downgrade=False)}
        switches = [up["switch_to_serving_s"]]
        root = firmware_root(data)
        for target in (OLD, NEW):
            before = current_slot(root)
            proc = subprocess.Popen([*CLI, "firmware", "install", "--data", str(data), str(signed[target])], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            switched = wait_until(lambda b=before: current_slot(root) != b and time.monotonic(), 300, "switch", 0.005)
            served = wait_until(lambda t=target: serving_version(lan_port) == t and time.monotonic(), SERVE_TIMEOUT_S,
                                "serving", 0.02)
            proc.wait(120)
            switches.append(served - switched)
        bricked, notes = kill_cycles(data, lan_port, signed, args.kill_cycles)
    finally:
        for server in reversed(servers):
            server.stop()
        link.close()
    ratio = up["moved"] / up["size"]
    switch_ratio = statistics.median(switches) / statistics.median(cold)
    rows = [("builds (two releases)", f"{build_s:.1f} s"),
            ("release size", f"{up['size']:,} bytes"),
            (f"bytes moved over {args.rate}", f"{up['moved']:,}"),
            ("fetch + install until the switch", f"{up['update_s']:.1f} s"),
            ("switch -> serving (median of 3)", f"{statistics.median(switches):.2f} s  {[round(s, 2) for s in switches]}"),
            ("cold start (median of 3)", f"{statistics.median(cold):.2f} s  {[round(s, 2) for s in cold]}"),
            ("kill -9 cycles", f"{args.kill_cycles} ({len(STEPS)} steps x installer/service), bricked {bricked}")]
    for name, value in rows:
        print(f"{name:36} {value}")
    for note in notes:
        print(f"  {note}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"update_bytes_ratio={ratio:.4f} switch_ratio_vs_cold_start={switch_ratio:.3f} kill9_cycles_bricked={bricked}")


if __name__ == "__main__":
    main()
