"""Talking to the county's LRS: its credentials file and ``POST statements`` with retries.

Credentials: ``H/lrs-credentials``, one line ``username:password`` (HTTP Basic, as
LRSs issue them), mode 0600; a file group- or other-readable is refused with one
line saying how to fix it, and never sent. ``school-edge hub lrs credentials``
writes it so.

``LrsClient.post`` sends one batch of xAPI 1.0.3 statements and returns once the LRS
accepted it: 200 or 204 (a repeat of statements it holds is a 204 no-op, the ids
being derived from the events), or 409 (it holds a statement with one of these ids:
ours, sent before; the batch is then sent again statement by statement, so the
others are not lost with it). A connection refused or cut, a timeout, 429 and 5xx answers are
retried with exponential backoff (``tenacity``) up to ``attempts`` times, then
``LrsError``; any other answer (401 wrong credentials, 400 a statement refused) is
``LrsError`` at once. Nothing is retried by hand here.
"""

from __future__ import annotations

import json
import logging
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt, stop_when_event_set, wait_exponential

from hub_sync.core.atomic_file import atomic_write
from hub_sync.core.errors import SyncError
from hub_sync.core.file_modes import PRIVATE_FILE_MODE
from hub_sync.core.tls import client_tls
from hub_sync.formats.xapi import XAPI_VERSION

log = logging.getLogger(__name__)

CREDENTIALS_FILE = "lrs-credentials"
CONNECT_TIMEOUT_S = 5.0
BACKOFF_MAX_S = 60.0
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class LrsError(SyncError):
    """The LRS cannot be used: not set, credentials unsafe or wrong, down, refusing, silent."""

    code = "lrs"
    http_status = 502


class _Transient(Exception):
    """One attempt failed in a way worth another (the LRS may be back in a moment)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en


@dataclass(frozen=True)
class LrsCredentials:
    username: str
    password: str


def credentials_path(data_dir: Path) -> Path:
    return Path(data_dir) / CREDENTIALS_FILE


def read_credentials(data_dir: Path) -> LrsCredentials | None:
    """The LRS credentials of the hub in ``data_dir``; None without a file (an LRS without
    authentication). LrsError if the file is readable by others or malformed."""
    path = credentials_path(data_dir)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        raise LrsError(f"LRS 凭据文件 {path} 的权限是 {mode:o}，别人也能读到，已拒绝使用；请运行 chmod 600 {path}",
                       f"LRS credentials file {path} is mode {mode:o} (readable by others); refused: run chmod 600 {path}")
    line = path.read_text("utf-8", "replace").strip().splitlines()[:1]
    username, sep, password = (line[0] if line else "").partition(":")
    if not sep or not username:
        raise LrsError(f"LRS 凭据文件 {path} 应为一行 用户名:密码",
                       f"LRS credentials file {path} must hold one line username:password")
    return LrsCredentials(username, password)


def write_credentials(data_dir: Path, username: str, password: str) -> Path:
    """Write the credentials file (0600, replaced atomically); returns its path."""
    if not username or ":" in username or "\n" in username + password:
        raise LrsError("用户名不能为空，不能含冒号；密码不能含换行",
                       "the username must be non-empty without ':'; the password without line breaks")
    path = credentials_path(data_dir)
    atomic_write(path, f"{username}:{password}\n".encode(), file_mode=PRIVATE_FILE_MODE)
    return path


class LrsClient:
    """One LRS's statements resource (``<url>statements``), with retries."""

    def __init__(self, url: str, credentials: LrsCredentials | None, *, timeout_s: float = 30.0, attempts: int = 5,
                 backoff_s: float = 1.0, stop: threading.Event | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.stop = stop or threading.Event()
        auth = httpx.BasicAuth(credentials.username, credentials.password) if credentials else None
        self.http = httpx.Client(verify=client_tls(), base_url=self.url, auth=auth,
                                 timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
                                 headers={"X-Experience-API-Version": XAPI_VERSION})

    def __enter__(self) -> "LrsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def post(self, statements: list[dict]) -> None:
        """Send one batch; returns once the LRS accepted it, LrsError otherwise (see the module's rules).

        An LRS answering 409 to a batch (it holds a different statement under one of the ids) may
        have stored none of it (ralph's POST is all or nothing): the batch then goes again one
        statement at a time (``PUT statements?statementId=``), where a 409 is that one statement."""
        if self._attempt(self._post_once, statements) == 409 and len(statements) > 1:
            log.warning("LRS answered 409 to a batch of %d; sending them one by one", len(statements))
            for one in statements:
                self._attempt(self._put_once, one)

    def _attempt(self, send, payload) -> int:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts) | stop_when_event_set(self.stop),
            wait=wait_exponential(multiplier=self.backoff_s, max=BACKOFF_MAX_S),
            retry=retry_if_exception_type(_Transient),
            sleep=self.stop.wait,  # a server stopping interrupts the backoff
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            return retrying(send, payload)
        except _Transient as exc:
            tries = retrying.statistics.get("attempt_number", 1)
            raise LrsError(f"LRS 暂时无法接收（试了 {tries} 次）：{exc.zh}；游标未前移，下次会重发",
                           f"the LRS did not accept the batch after {tries} attempt(s): {exc.en}; "
                           "nothing marked as sent, the next pass sends it again") from None

    def _put_once(self, one: dict) -> int:
        return self._send("PUT", one, {"statementId": one["id"]})

    def _post_once(self, statements: list[dict]) -> int:
        return self._send("POST", statements, None)

    def _send(self, method: str, payload, params: dict | None) -> int:
        """One request; the status if the LRS accepted (200, 204) or holds the ids (409)."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            r = self.http.request(method, "statements", content=body, params=params,
                                  headers={"Content-Type": "application/json"})
        except httpx.TimeoutException:
            raise _Transient(f"{self.timeout_s:g} 秒内没有回答 {self.url}",
                             f"no answer from {self.url} within {self.timeout_s:g} s (timeout)") from None
        except httpx.TransportError as exc:
            raise _Transient(f"无法连接 {self.url}（{type(exc).__name__}）",
                             f"cannot reach {self.url} ({type(exc).__name__}: {exc})") from None
        if r.status_code in (200, 204, 409):  # 409: it holds a statement with this id (ours, sent before)
            return r.status_code
        detail = r.text.strip().replace("\n", " ")[:200]
        if r.status_code in TRANSIENT_STATUS:
            raise _Transient(f"LRS 回答 {r.status_code}：{detail}", f"the LRS answered {r.status_code}: {detail}")
        if r.status_code in (401, 403):
            raise LrsError(f"LRS 拒绝了凭据（{r.status_code}）：请检查 lrs-credentials 文件",
                           f"the LRS refused the credentials ({r.status_code}): check the lrs-credentials file")
        raise LrsError(f"LRS 拒收这批语句（{r.status_code}）：{detail}",
                       f"the LRS refused the batch ({r.status_code}): {detail}")
