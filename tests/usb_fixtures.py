"""A county hub data folder, a stick folder and empty appliances, for the USB tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from spaces_fixtures import fast_kdf

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from hub_sync.hub import Hub
from hub_sync.hub.channels import Channels
from hub_sync.hub.publisher import publish

SCHOOL = "4301234567"
OTHER_SCHOOL = "4307654321"
PASSPHRASE = "红星小学 2026 correct horse"
HUB_URL = "http://127.0.0.1:9"
RSYNC_URL = "rsync://127.0.0.1:10/content"
# as Excel on Chinese Windows saves it: GBK, CRLF, a stray blank line, a trailing ",,,,,"
ROSTER_LINES = [
    "姓名,学籍号,性别,年级,班级,角色",
    "张三,G110101201501011234,男,一年级,一年级1班,学生",
    ",,,,,",
    "李四,G110101201502021235,女,一年级,一年级1班,学生",
    "王老师,T001,女,,一年级1班,班主任",
    "",
]


def roster_bytes(lines: list[str] | None = None, encoding: str = "gbk") -> bytes:
    return "\r\n".join(lines or ROSTER_LINES).encode(encoding)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class UsbWorld:
    """One hub with a mandatory channel and a resource, a stick, appliances on demand."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.hub = Hub.init(tmp / "hub", reserve_mb=1)
        self.stick = tmp / "stick"
        self.stick.mkdir()
        Channels(self.hub.db).put_channel("yuwen-1", "一年级语文 统编版", mandatory=True)
        self.add("r-pinyin", {"pinyin.mp4": os.urandom(200_000), "notes.txt": "a o e".encode()}, title="汉语拼音 a o e")
        publish(self.hub)
        self.apps: list[Appliance] = []

    def add(self, rid: str, files: dict[str, bytes], **meta) -> list[str]:
        entries = []
        for name, data in files.items():
            blob = self.hub.store.put_bytes(data)
            entries.append({"path": name, "sha256": blob.sha256, "size": len(data), "mime": "application/octet-stream"})
        Channels(self.hub.db).put_resource(rid, "yuwen-1", {"kind": "video", "grade": "一年级", "subject": "语文",
                                                            "title": rid, **meta}, entries)
        return [e["sha256"] for e in entries]

    def make(self, school: str = SCHOOL, name: str = "红星小学", roster: bytes | None = None, hub=None, **kw):
        from provisioning.usb_provision import make_stick

        return make_stick(hub or self.hub, kw.pop("stick", self.stick), school, name, HUB_URL, RSYNC_URL,
                          roster=roster_bytes() if roster is None else (roster or None),
                          passphrase=kw.pop("passphrase", PASSPHRASE), teaching_points=["岭下教学点"], **kw)

    def appliance(self, name: str = "edge") -> Appliance:
        app = Appliance.open(EdgeConfig.load(self.tmp / name, {"free_space_reserve_mb": 1, "advertise": False}))
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.close()
        self.hub.close()


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A ``UsbWorld`` with a fast KDF; a test module imports this fixture to use it."""
    fast_kdf(monkeypatch)
    w = UsbWorld(tmp_path)
    yield w
    w.close()


def device_state(app: Appliance) -> tuple:
    """Everything applying a stick could change: the database and the data folder's files."""
    dump = "\n".join(line for line in app.db.conn.iterdump())
    files = sorted((str(p.relative_to(app.data_dir)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in Path(app.data_dir).rglob("*")
                   if p.is_file() and not p.name.startswith(("edge.db", ".lock")))
    return dump, files


def tree(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in Path(folder).rglob("*") if p.is_file())
