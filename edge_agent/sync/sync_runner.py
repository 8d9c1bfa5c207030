""""Sync now" from the technician's page: one background sync and its live progress.

The work is the sync engineer's (``content_sync.sync_content`` and, when present,
``usage_sync.upload_pending``), run in a daemon thread. Progress is written to
``<data>/sync/progress.json`` (write-then-rename) so every server worker reads the
same state. ``progress_fraction`` turns the sync's progress lines into a fraction.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from pathlib import Path

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import Problem

log = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
_FETCHING = re.compile(r"fetching (\d+) files")
_RSYNC = re.compile(r"rsync (\d+)%")


def progress_fraction(line: str, state: dict) -> float:
    """How far a sync is, from its latest progress line (pure; ``state`` keeps counts)."""
    m = _FETCHING.search(line)
    if m:
        state["files"], state["seen"] = int(m.group(1)), 0
        return 0.2
    m = _RSYNC.search(line)
    if m:
        return 0.2 + 0.7 * min(100, int(m.group(1))) / 100
    if line.startswith("http ") and state.get("files"):
        state["seen"] = state.get("seen", 0) + 1
        return 0.2 + 0.7 * min(1.0, state["seen"] / state["files"])
    return state.get("last", 0.1)


class SyncRun:
    """The state of the latest sync started from the page, shared through a file."""

    def __init__(self, appliance) -> None:
        self.appliance = appliance
        self.path = Path(appliance.data_dir) / "sync" / PROGRESS_FILE

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {"state": "idle", "running": False, "fraction": 0.0, "message": ""}

    def write(self, **values) -> None:
        data = self.read() | values | {"updated_at": time.time()}
        atomic_write(self.path, json.dumps(data, ensure_ascii=False).encode("utf-8"))

    def start(self) -> dict:
        """Start a sync in the background; refuse (ConflictError) if one is running."""
        from edge_agent.sync.content_sync import is_provisioned
        from edge_agent.spaces.errors import ConflictError

        if not is_provisioned(self.appliance):
            raise ConflictError("本设备还没有配置县平台，不能同步。请先用U盘完成配置",
                                "this appliance is not provisioned with a county hub; provision it with a USB stick first")
        current = self.read()
        if current.get("running") and time.time() - current.get("updated_at", 0) < 600:
            raise ConflictError("同步正在进行，请等它完成", "a sync is already running; wait for it to finish")
        self.write(state="running", running=True, fraction=0.05, message="", started_at=time.time())
        threading.Thread(target=self._run, name="page-sync", daemon=True).start()
        return self.read()

    def _run(self) -> None:
        from edge_agent.sync.content_sync import sync_content

        counts: dict = {}

        def step(line: str) -> None:
            counts["last"] = progress_fraction(line, counts)
            self.write(fraction=counts["last"], message=line)

        try:
            step("检查资源目录 checking the catalogue")
            result = sync_content(self.appliance, allow_download=True, progress=step)  # enrolls first if needed
            try:
                from edge_agent.sync.usage_sync import upload_pending
            except ImportError:  # usage upload is optional for content sync
                upload_pending = None
            if upload_pending is not None:
                step("上传使用记录 uploading usage")
                upload_pending(self.appliance)
            self.write(state="done", running=False, fraction=1.0, catalogue_version=result.catalogue_version,
                       files=result.fetched.files,
                       message=f"资源目录版本 {result.catalogue_version}，下载 {result.fetched.files} 个文件")
        except Problem as exc:
            self.write(state="failed", running=False, message=exc.zh, message_en=exc.en)
        except Exception as exc:  # the page must learn the sync ended, whatever happened
            log.exception("sync started from the page failed")
            self.write(state="failed", running=False, message=f"设备内部出错：{exc}", message_en=f"internal error: {exc}")
