"""The appliance's settings: one typed object, one table of defaults and help.

Defaults work for ``school-edge demo``. A site can put overrides in
``<data_dir>/settings.json``; the CLI and tests pass overrides on top. An unknown
setting is a startup error, and ``tests/test_docs.py`` checks that every setting
is documented in the README.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edge_agent.errors import ConfigError

SETTINGS_FILE = "settings.json"


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class EdgeConfig:
    """Everything the appliance can be told. See ``settings_table()`` for help."""

    data_dir: Path = _setting(Path("school-edge-data"), "数据目录 Data folder: catalogue, content store, journal, keys")
    host: str = _setting("127.0.0.1", "监听地址 Address to serve on (0.0.0.0 for the school LAN)")
    port: int = _setting(8080, "监听端口 TCP port to serve on")
    workers: int = _setting(1, "WSGI 工作进程数 Worker processes of the WSGI server")
    threads: int = _setting(64, "每个进程的线程数 Threads per worker (concurrent clients)")
    free_space_reserve_mb: int = _setting(512, "保留空间 Free disk space (MB) an import may never eat into")
    advertise: bool = _setting(True, "局域网广播 Announce the appliance with zeroconf while serving")
    announce_interfaces: str = _setting("all", "广播网卡 Interfaces (addresses) for zeroconf: all, or a comma list such as 127.0.0.1")
    role: str = _setting("edge", "角色 Role announced on the LAN: edge (school) or hub (county)")
    default_language: str = _setting("zh_CN", "默认语言 Default language of pages: zh_CN or en")
    max_upload_mb: int = _setting(200, "上传上限 Largest upload (MB) accepted from a teacher or student")
    student_quota_mb: int = _setting(100, "学生作业空间 Total MB of work (files and text) one student may hand in; 0: no limit")
    teacher_quota_mb: int = _setting(2048, "教师上传空间 Total MB of own resources one teacher may upload; 0: no limit")
    hub_url: str = _setting("", "县平台地址 URL of the county hub (set by provisioning)")
    sync_window: str = _setting("22:00-06:00", "同步时段 Local time window for large content downloads")
    sync_bwlimit_kbps: int = _setting(1500, "带宽上限 Bandwidth cap (KiB/s) for content downloads")
    sync_interval_s: int = _setting(300, "同步间隔 Seconds between scheduled sync attempts")
    sync_timeout_s: int = _setting(30, "同步超时 Seconds without data before a content download is given up (and resumed later)")
    secret_key: str = _setting("", "会话密钥 Session signing key; generated into the data folder when empty")
    front: str = _setting("nginx", "局域网前端 What faces the LAN: nginx (serves files, buffers and limits requests, gunicorn behind it on a unix socket) or none (gunicorn alone on host:port, for development)")
    login_rate_per_min: int = _setting(30, "登录频率上限 Login attempts (POST) per minute from one client address, enforced by nginx (429 beyond)")
    request_timeout_s: int = _setting(15, "请求超时 Seconds nginx waits for a client's request header or body, or between sends, before closing the connection")
    json_body_kb: int = _setting(64, "请求体上限 Largest request body (KB) outside the upload routes (JSON, logins, forms)")
    scrub_rate_mb_s: int = _setting(4, "校验速度 MB per second the background scrub re-hashes stored files at (0 turns it off); damaged files are quarantined")
    scrub_every_h: float = _setting(168.0, "校验周期 Hours after which the background scrub hashes a stored file again")
    usb_mount_roots: str = _setting("/media,/run/media,/mnt", "U盘挂载目录 Comma list of folders where USB sticks appear (watched while serving)")
    trust_front_header: bool = _setting(False, "信任前端转发的地址 Take the client address from X-Real-IP on requests that come through the nginx front (unix socket or loopback); login throttling counts by it")

    @classmethod
    def load(cls, data_dir: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> "EdgeConfig":
        """Defaults, then ``<data_dir>/settings.json`` if present, then ``overrides``."""
        values: dict[str, Any] = {}
        overrides = dict(overrides or {})
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        folder = Path(overrides.get("data_dir", cls.data_dir))
        site_file = folder / SETTINGS_FILE
        if site_file.is_file():
            try:
                values.update(json.loads(site_file.read_text("utf-8")))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    f"设置文件 {site_file} 不是有效的 JSON，请改正或删除它",
                    f"settings file {site_file} is not valid JSON ({exc}); fix or remove it",
                ) from exc
        values.update(overrides)
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "EdgeConfig":
        """Build a config from a mapping, refusing unknown names and wrong types."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"未知的设置项：{', '.join(unknown)}，请检查拼写",
                f"unknown setting(s): {', '.join(unknown)}; check the spelling",
            )
        converted = {name: _convert(known[name], value) for name, value in values.items()}
        return cls(**converted)

    def replace(self, **changes: Any) -> "EdgeConfig":
        """A copy with some settings changed (validated like any other)."""
        merged = dataclasses.asdict(self)
        merged.update(changes)
        return self.from_mapping(merged)


def _convert(f: dataclasses.Field, value: Any) -> Any:
    kind = type(f.default)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if issubclass(kind, Path):
            return Path(value)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"设置项 {f.name} 的值 {value!r} 无效，应为 {kind.__name__}",
            f"setting {f.name} has invalid value {value!r}; expected {kind.__name__}",
        ) from exc


def settings_table() -> list[tuple[str, Any, str]]:
    """(name, default, help) for every setting, in declaration order."""
    return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(EdgeConfig)]
