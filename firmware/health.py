"""The health check a new version must pass on its local port before it is committed.

Within one deadline: ``/api/v1/status`` answers with the new version (so the
database opened and every migration applied), a sample catalogue file, when the
library holds one, serves with its catalogued sha256, and the library page
renders. The first failure is the reason recorded for the rollback.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Callable

import httpx

from hub_sync.core.processes import wait_until
from hub_sync.core.tls import client_tls

from firmware.errors import FirmwareError

DEADLINE_S = 60.0
PROBE_TIMEOUT_S = 5.0


class HealthError(FirmwareError):
    """The new version did not pass its health check (the reason is the message)."""

    code = "firmware_health"


@dataclass(frozen=True)
class Sample:
    """A catalogue file the new version must serve: its URL path and sha256."""

    path: str
    sha256: str


def check_health(base_url: str, version: str, sample: Sample | None = None, deadline_s: float = DEADLINE_S,
                 alive: Callable[[], bool] = lambda: True) -> dict:
    """Run the checks against ``base_url``; return what passed, or HealthError saying
    what failed. ``alive`` is polled while waiting: a process that died fails at once."""
    deadline = time.monotonic() + deadline_s
    with httpx.Client(base_url=base_url, timeout=PROBE_TIMEOUT_S, follow_redirects=True, verify=client_tls()) as client:

        def status() -> dict | None:
            if not alive():
                raise HealthError("新版本启动后退出", "the new version exited before it answered")
            try:
                answer = client.get("/api/v1/status")
            except httpx.TransportError:
                return None
            return answer.json() if answer.status_code == 200 else None

        try:
            body = wait_until(status, max(0.1, deadline - time.monotonic()), "the new version's status", 0.1)
        except TimeoutError:
            raise HealthError(f"新版本在 {deadline_s:g} 秒内没有应答状态查询",
                              f"the new version's status did not answer within {deadline_s:g} s") from None
        if body.get("version") != version:
            raise HealthError(f"新版本报告的版本是 {body.get('version')}，应为 {version}",
                              f"the new version reports version {body.get('version')!r}, expected {version}")
        passed = {"status": True}
        if sample is not None:
            got = client.get(sample.path)
            if got.status_code != 200 or hashlib.sha256(got.content).hexdigest() != sample.sha256:
                raise HealthError(f"新版本提供的资源文件 {sample.path} 不对（{got.status_code}）",
                                  f"the new version served {sample.path} wrong ({got.status_code}, hash mismatch?)")
            passed["sample"] = sample.path
        page = client.get("/", headers={"Accept": "text/html"})
        if page.status_code != 200 or "<html" not in page.text.lower():
            raise HealthError(f"新版本的首页无法显示（{page.status_code}）",
                              f"the new version's library page did not render ({page.status_code})")
        passed["page"] = True
        if time.monotonic() > deadline:
            raise HealthError("新版本的健康检查超时", f"the new version's health check took over {deadline_s:g} s")
    return passed
