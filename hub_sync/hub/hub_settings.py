"""The hub's own settings: a small typed table in the hub database.

Set with ``school-edge hub config set KEY VALUE`` (``hub config`` lists them);
every key is declared in ``HUB_SETTINGS`` with its type, default and a
Chinese/English description, and a value is checked before it is stored, so a
wrong one is refused with one line and the stored one is kept. All SQL of the
settings is here; ``Hub.open`` applies the table's migrations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from hub_sync.core.errors import FormatError
from hub_sync.hub.database import Database, transaction


def _url(value: str) -> str:
    value = value.strip()
    if value == "":
        return ""  # unset: nothing is relayed
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError("an http(s) address without query, e.g. https://lrs.example.org/xAPI/")
    return value.rstrip("/") + "/"


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return number
    return parse


def _code(value: str) -> str:
    value = value.strip()
    if value and not value.replace("-", "").replace("_", "").isalnum():
        raise ValueError("letters, digits, '-' or '_', e.g. 440102")
    return value


@dataclass(frozen=True)
class HubSetting:
    key: str
    parse: Callable[[str], object]
    default: object
    help: str


HUB_SETTINGS: dict[str, HubSetting] = {s.key: s for s in (
    HubSetting("hub_lrs_url", _url, "",
               "学习记录库 (LRS) 的 xAPI 地址，空则不转发 xAPI endpoint of the county's LRS (…/xAPI/); empty: no relay"),
    HubSetting("hub_lrs_batch", _int_between(1, 5000), 500,
               "每次 POST 的语句数 Statements per POST /statements"),
    HubSetting("hub_lrs_interval_min", _int_between(1, 24 * 60), 10,
               "hub serve 多久转发一次（分钟） Minutes between the relay's passes in hub serve"),
    HubSetting("hub_lrs_first_pass_s", _int_between(0, 3600), 30,
               "hub serve 启动后多久做第一次转发（秒） Seconds after hub serve starts before its first relay pass"),
    HubSetting("hub_lrs_timeout_s", _int_between(1, 600), 30,
               "等待 LRS 回答的秒数 Seconds to wait for the LRS to answer one POST"),
    HubSetting("hub_lrs_attempts", _int_between(1, 20), 5,
               "每批最多尝试次数（指数退避） Attempts per batch (exponential backoff between them)"),
    # the county-to-province relay (hub_sync.hub.relay_push)
    HubSetting("province_url", _url, "",
               "省级平台地址，空则不向省转发 Address of the province hub (https://…/); empty: no relay up"),
    HubSetting("county_code", _code, "",
               "本县在省级平台登记的代码 This county's code as the province registered it (hub county add --id)"),
    HubSetting("relay_interval_min", _int_between(1, 7 * 24 * 60), 60,
               "hub serve 多久向省转发一次（分钟） Minutes between relay passes to the province in hub serve"),
    HubSetting("relay_bundle_kb", _int_between(16, 4096), 2048,
               "每个转发包的大小上限（KB；慢速链路设小一些） Largest relay bundle in KB (smaller over a slow uplink)"),
    HubSetting("relay_timeout_s", _int_between(1, 3600), 120,
               "等待省级平台回答的秒数 Seconds to wait for the province to answer one bundle"),
    HubSetting("relay_attempts", _int_between(1, 20), 5,
               "每个转发包最多尝试次数（指数退避） Attempts per bundle (exponential backoff between them)"),
)}


class HubSettings:
    """Read and change the hub's settings (typed values, defaults for unset keys)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, key: str):
        setting = _setting(key)
        row = self.db.execute("select value from hub_settings where key = ?", [key]).fetchone()
        return setting.parse(row[0]) if row else setting.default

    def all(self) -> dict[str, object]:
        """Every setting's current value (defaults included)."""
        return {key: self.get(key) for key in HUB_SETTINGS}

    def set(self, key: str, value: str):
        """Check and store ``value``; FormatError (nothing stored) if the key or value is wrong."""
        setting = _setting(key)
        try:
            parsed = setting.parse(str(value))
        except ValueError as exc:
            raise FormatError(f"设置 {key} 的值 {value!r} 无效：{setting.help}",
                              f"invalid value {value!r} for {key}: expected {exc}") from None
        with transaction(self.db):
            self.db.execute("insert into hub_settings (key, value, updated_at) values (?, ?, ?)"
                            " on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at",
                            [key, str(parsed), time.time()])
        return parsed


def _setting(key: str) -> HubSetting:
    try:
        return HUB_SETTINGS[key]
    except KeyError:
        raise FormatError(f"没有名为 {key} 的平台设置，可用：{', '.join(HUB_SETTINGS)}",
                          f"no hub setting named {key}; known: {', '.join(HUB_SETTINGS)}") from None
