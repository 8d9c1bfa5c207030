"""Noticing a stick: look in the mount roots, verify, and record what it would do.

The appliance never applies a stick by itself: ``StickWatcher`` (a
background job that ``edge_agent.wiring`` hands to the runner) polls the folders
of the ``usb_mount_roots`` setting (``/media,/run/media,/mnt``: desktop
automounters put a stick at ``/media/<label>``, ``/media/<user>/<label>`` or
``/run/media/<user>/<label>``), and for each stick with a ``school-edge`` folder
writes its plan (what applying would do, or why it is refused) to
``<data>/usb/plans.json``, which the technician page reads. The technician
then confirms on the page (``POST /api/v1/usb/apply``) or on the command line.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

from hub_sync.core.errors import Problem

from provisioning import stick

log = logging.getLogger(__name__)

PLANS_FILE = Path("usb") / "plans.json"
DEFAULT_ROOTS = "/media,/run/media,/mnt"
POLL_INTERVAL_S = 3.0
MAX_DEPTH = 2  # <root>/<label> or <root>/<user>/<label>


def find_sticks(roots: str) -> list[Path]:
    """Folders under the mount roots (up to two levels down) that hold a school-edge folder."""
    found: list[Path] = []
    for root in (r.strip() for r in (roots or "").split(",")):
        if not root:
            continue
        level = [Path(root)]
        for _ in range(MAX_DEPTH + 1):
            nxt = []
            for folder in level:
                try:
                    if (folder / stick.ROOT).is_dir() and not (folder / stick.ROOT).is_symlink():
                        found.append(folder)
                        continue
                    nxt.extend(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
                except OSError:
                    continue  # unreadable or vanished (a stick pulled out): skip
            level = nxt
    return sorted(set(found))


def plan_for(appliance, stick_path: Path) -> dict:
    """What this stick would do on this appliance (never raises for a bad stick)."""
    from provisioning.usb_apply import plan_stick

    entry: dict = {"stick": str(stick_path), "schools": stick.schools_on(stick_path), "ok": True}
    provisioned = bool(appliance.identity("hub_url"))
    try:
        if not provisioned:
            entry["provision"] = plan_stick(appliance, stick_path)
            entry["actions"] = entry["provision"]["actions"]
        else:
            entry["actions"] = _sneakernet_actions(appliance, stick_path)
    except Problem as exc:
        entry.update(ok=False, error=exc.to_json()["error"], actions=[])
    return entry


def _sneakernet_actions(appliance, stick_path: Path) -> list[str]:
    from provisioning.errors import WrongSchoolError

    folder = stick.school_dir(stick_path, appliance.school_code)
    if not folder.is_dir():
        raise WrongSchoolError(f"U盘上没有本校 {appliance.school_code} 的数据", f"the stick holds nothing for school {appliance.school_code}")
    actions = []
    down = folder / "down" / appliance.device_id
    if down.is_dir() and any(stick.is_complete(p) for p in down.iterdir()):
        actions.append("导入县平台的确认并清理已确认的使用记录 apply the hub's acknowledgements and prune")
    if stick.is_complete(folder / "content"):
        actions.append("导入新的资源包 import the new content pack")
    actions.append("导出使用数据和教师上传（加密给县平台） export usage and uploads, encrypted to the hub")
    return actions


def write_plans(appliance, roots: str) -> list[dict]:
    """Scan, plan, and record the plans for the technician page; return them."""
    plans = [plan_for(appliance, p) for p in find_sticks(roots)]
    stick.atomic_write(Path(appliance.data_dir) / PLANS_FILE, json.dumps({"sticks": plans}, ensure_ascii=False).encode("utf-8"))
    return plans


def read_plans(data_dir: Path) -> list[dict]:
    try:
        return json.loads((Path(data_dir) / PLANS_FILE).read_text("utf-8"))["sticks"]
    except (OSError, ValueError, KeyError):
        return []


class StickWatcher:
    """A daemon thread that re-plans whenever the set of sticks changes."""

    def __init__(self, appliance, roots: str, interval_s: float = POLL_INTERVAL_S,
                 on_change: Callable[[list[dict]], None] | None = None) -> None:
        self.appliance = appliance
        self.roots = roots
        self.interval_s = interval_s
        self.on_change = on_change
        self._stop = threading.Event()
        self._seen: list[Path] | None = None
        self._thread = threading.Thread(target=self._run, name="usb-watcher", daemon=True)

    def start(self) -> "StickWatcher":
        self._thread.start()
        return self

    def poll(self) -> list[dict] | None:
        """One look; the new plans when the set of sticks changed, else None."""
        sticks = find_sticks(self.roots)
        if sticks == self._seen:
            return None
        self._seen = sticks
        plans = write_plans(self.appliance, self.roots)
        for p in plans:
            log.info("USB stick at %s: %s", p["stick"], "; ".join(p["actions"]) if p["ok"] else p["error"]["message_en"])
        if self.on_change:
            self.on_change(plans)
        return plans

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # noqa: BLE001  (a watcher must survive anything a stick does)
                log.exception("USB watcher: scanning failed")
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def start_watcher(appliance) -> Callable[[], None]:
    """A background job (``edge_agent.wiring``): watch the configured mount roots while serving."""
    roots = getattr(appliance.config, "usb_mount_roots", DEFAULT_ROOTS)
    watcher = StickWatcher(appliance, roots).start()
    return watcher.stop
