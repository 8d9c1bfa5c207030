"""Fetching content files with the real ``rsync`` binary (through ``sh``) from the
hub's rsync daemon.

Files are asked for by their store path (``ab/cdef...``) with ``--files-from``.
``--partial-dir`` keeps a cut transfer, so the next run resumes it using the kept
bytes as the basis instead of starting over; ``--bwlimit`` caps the school's
thin link; ``--compress`` squeezes what compresses on the wire (rsync skips media
types such as mp4 and jpg by itself; what lands on disk and is checked against
TUF is the file itself); ``--timeout``/``--contimeout`` give up on a dead link;
``--max-size`` stops a hub from sending more than the largest declared file
(endless data).
The rsync child gets SIGTERM when its parent dies (PR_SET_PDEATHSIG): a killed sync
leaves no rsync behind, and rsync keeps what it had in the partial folder.
"""

from __future__ import annotations

import ctypes
import logging
import re
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import sh

from hub_sync.core.errors import LinkError

log = logging.getLogger(__name__)

PARTIAL_DIR = ".rsync-partial"
RSYNC_TIMEOUT_S = 30
RSYNC_CONTIMEOUT_S = 10
_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5


class RsyncUnreachable(LinkError):
    """The rsync port cannot be reached: use the HTTP fallback."""

    code = "rsync_unreachable"


@dataclass(frozen=True)
class RsyncResult:
    bytes_received: int


def store_path(sha256: str) -> str:
    """Where a blob lives in the hub's store (and so in the rsync module)."""
    return f"{sha256[:2]}/{sha256[2:]}"


def _probe(host: str, port: int, timeout_s: float) -> None:
    """Is the rsync port reachable at all? If not, the caller falls back to HTTP;
    a transfer that fails once started is a cut link instead (resumed next time)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except OSError as exc:
        raise RsyncUnreachable(f"无法连接 rsync 服务 {host}:{port}", f"cannot reach rsync at {host}:{port}: {exc}") from exc


def _staged_bytes(staging: Path) -> int:
    return sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())


def _watch(proc, staging: Path, timeout_s: float, progress: Callable[[int], None] | None) -> None:
    """Wait for rsync; stop it (SIGTERM, so it keeps its partial file) when no byte
    arrived for ``timeout_s`` (rsync's own --timeout does not fire on every dead
    link); raise sh.ErrorReturnCode on failure."""
    last_size, last_change = -1, time.monotonic()
    while True:
        try:
            proc.wait(timeout=WATCH_INTERVAL_S)
            return
        except sh.TimeoutException:
            pass
        size = _staged_bytes(staging)
        if size != last_size:
            last_size, last_change = size, time.monotonic()
            if progress:
                progress(size)
        elif time.monotonic() - last_change > timeout_s:
            log.warning("rsync: no data for %ss, stopping it (the partial file is kept)", timeout_s)
            proc.signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except sh.TimeoutException:
                proc.kill()
            except sh.ErrorReturnCode:
                pass
            raise LinkError(f"连接中断：{timeout_s} 秒没有收到数据，下次同步会继续",
                            f"link stalled: no data for {timeout_s}s; the next sync resumes the transfer")


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def rsync_fetch(module_url: str, shas: list[str], staging: Path, bwlimit_kbps: int = 0, max_size: int | None = None,
                timeout_s: int = RSYNC_TIMEOUT_S, contimeout_s: int = RSYNC_CONTIMEOUT_S,
                progress: Callable[[int], None] | None = None) -> RsyncResult:
    """Fetch blobs ``shas`` into ``staging/ab/cdef...``; raise LinkError on failure."""
    parsed = urlparse(module_url)
    if parsed.scheme != "rsync" or not parsed.hostname:
        raise RsyncUnreachable("rsync 地址无效", f"invalid rsync URL {module_url!r}")
    _probe(parsed.hostname, parsed.port or 873, contimeout_s)
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=staging.parent, prefix=".files-from-", suffix=".txt") as listing:
        listing.write("".join(store_path(s) + "\n" for s in shas))
        listing.flush()
        args = ["--no-motd", "--recursive", "--times", "--compress", "--chmod=Fu=rw,Du=rwx", f"--partial-dir={PARTIAL_DIR}",
                f"--timeout={timeout_s}", f"--contimeout={contimeout_s}", f"--files-from={listing.name}",
                "--stats"]
        if bwlimit_kbps:
            args.append(f"--bwlimit={bwlimit_kbps}")
        if max_size is not None:
            args.append(f"--max-size={max(max_size, 1)}")
        args += [module_url.rstrip("/") + "/", str(staging) + "/"]
        proc = sh.rsync(*args, _bg=True, _bg_exc=False, _err_to_out=True, _tty_out=False, _preexec_fn=_die_with_parent,
                        _env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"})
        try:
            _watch(proc, staging, timeout_s, progress)
        except sh.ErrorReturnCode as exc:
            text = exc.stdout.decode(errors="replace")[-500:].strip().replace("\n", " | ")
            raise LinkError(f"rsync 传输中断（代码 {exc.exit_code}），下次同步会继续",
                            f"rsync transfer interrupted (exit {exc.exit_code}); the next sync resumes it: {text}") from exc
        output = [str(proc)]
        if progress:
            progress(100)
        text = "".join(output)
        match = re.search(r"Total bytes received: ([\d,]+)", text)
        return RsyncResult(int(match.group(1).replace(",", "")) if match else 0)
