"""A real county hub (HTTP + rsync daemon on loopback) and a provisioned appliance,
for the content-sync tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conftest import ServerProcess, free_port

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.sync.content_sync import sync_content
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import publish
from provisioning.apply import apply_bundle
from provisioning.bundle import make_bundle

SCHOOL = "4112345678"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SyncEnv:
    """Hub data folder + running hub server + provisioned appliance."""

    def __init__(self, tmp: Path, host: str = "127.0.0.1", start: bool = True) -> None:
        self.tmp = tmp
        self.hub = Hub.init(tmp / "hub", reserve_mb=1)
        chans = Channels(self.hub.db)
        chans.put_channel("yuwen-1", "一年级语文 统编版", mandatory=True)
        chans.put_channel("math-1", "一年级数学 人教版", mandatory=False)
        self.host = host
        self.port, self.rsync_port = free_port(), free_port()
        self.hub_url = f"http://{host}:{self.port}"
        self.rsync_url = f"rsync://{host}:{self.rsync_port}/content"
        make_bundle(self.hub, SCHOOL, "红星小学", self.hub_url, self.rsync_url, tmp / "bundle")
        self.config = EdgeConfig.load(tmp / "edge", {"free_space_reserve_mb": 1, "advertise": False})
        self.app = Appliance.open(self.config)
        apply_bundle(self.app, tmp / "bundle")
        self.server: ServerProcess | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Start the real ``school-edge hub serve`` (gunicorn + rsync daemon) and wait for it."""
        self.server = ServerProcess(["hub", "serve", "--data", str(self.hub.data_dir), "--host", self.host,
                                     "--port", str(self.port), "--rsync-port", str(self.rsync_port)], self.port)
        self.server.base = self.hub_url
        self.server.wait("/api/v1/hub/status")

    def stop(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None

    def add(self, channel: str, rid: str, files: dict[str, bytes], **meta) -> list[str]:
        entries = []
        for name, data in files.items():
            blob = self.hub.store.put_bytes(data)
            entries.append({"path": name, "sha256": blob.sha256, "size": len(data), "mime": "application/octet-stream"})
        Channels(self.hub.db).put_resource(rid, channel, {"title": f"资源 {rid}", "kind": "document", "grade": "一年级",
                                                          "subject": "语文", **meta}, entries)
        return [e["sha256"] for e in entries]

    def publish(self, changed=None):
        return publish(self.hub, changed)

    def sync(self, **kw):
        return sync_content(self.app, **kw)

    def state(self) -> tuple:
        """What a teacher could see and what is stored: the catalogue, the blobs, the version."""
        rows = [(r.id, r.title, r.channel, tuple((f.path, f.sha256) for f in r.files))
                for r in self.app.catalogue.search(limit=500)[1]]
        version = self.app.db.execute("select value from sync_state where key = 'catalogue_version'").fetchone()
        return sorted(rows), sorted(self.app.store), version[0] if version else None

    def close(self) -> None:
        self.stop()
        self.app.close()
        self.hub.close()
