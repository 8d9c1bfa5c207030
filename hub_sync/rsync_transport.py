"""Fetching content files with the real ``rsync`` binary (through ``sh``) from the
hub's rsync daemon.

Files are asked for by their store path (``ab/cdef...``) with ``--files-from``.
``--partial-dir`` keeps a cut transfer, so the next run resumes it using the kept
bytes as the basis instead of starting over; ``--bwlimit`` caps the school's
thin link; ``--timeout``/``--contimeout`` give up on a dead link; ``--max-size``
stops a hub from sending more than the largest declared file (endless data).
The rsync child dies with its parent (PR_SET_PDEATHSIG), so a killed sync leaves
no rsync behind writing into the staging folder.
"""

from __future__ import annotations

import ctypes
import logging
import re
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import sh

from .errors import LinkError

log = logging.getLogger(__name__)

PARTIAL_DIR = ".rsync-partial"
RSYNC_TIMEOUT_S = 30
RSYNC_CONTIMEOUT_S = 10
# rsync exit codes meaning "the daemon could not be reached at all"
UNREACHABLE_CODES = {5, 10, 35}
_PR_SET_PDEATHSIG = 1


class RsyncUnreachable(LinkError):
    """The rsync port cannot be reached: use the HTTP fallback."""

    code = "rsync_unreachable"


@dataclass(frozen=True)
class RsyncResult:
    bytes_received: int


def store_path(sha256: str) -> str:
    """Where a blob lives in the hub's store (and so in the rsync module)."""
    return f"{sha256[:2]}/{sha256[2:]}"


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def rsync_fetch(module_url: str, shas: list[str], staging: Path, bwlimit_kbps: int = 0, max_size: int | None = None,
                timeout_s: int = RSYNC_TIMEOUT_S, contimeout_s: int = RSYNC_CONTIMEOUT_S,
                progress: Callable[[int], None] | None = None) -> RsyncResult:
    """Fetch blobs ``shas`` into ``staging/ab/cdef...``; raise LinkError on failure."""
    parsed = urlparse(module_url)
    if parsed.scheme != "rsync" or not parsed.hostname:
        raise RsyncUnreachable("rsync 地址无效", f"invalid rsync URL {module_url!r}")
    staging.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=staging.parent, prefix=".files-from-", suffix=".txt") as listing:
        listing.write("".join(store_path(s) + "\n" for s in shas))
        listing.flush()
        args = ["--no-motd", "--recursive", "--times", "--chmod=Fu=rw,Du=rwx", f"--partial-dir={PARTIAL_DIR}",
                f"--timeout={timeout_s}", f"--contimeout={contimeout_s}", f"--files-from={listing.name}",
                "--info=progress2", "--stats"]
        if bwlimit_kbps:
            args.append(f"--bwlimit={bwlimit_kbps}")
        if max_size is not None:
            args.append(f"--max-size={max(max_size, 1)}")
        args += [module_url.rstrip("/") + "/", str(staging) + "/"]
        output: list[str] = []

        def on_out(chunk: str) -> None:
            output.append(chunk)
            if progress:
                percents = re.findall(r"(\d+)%", chunk)
                if percents:
                    progress(int(percents[-1]))

        try:
            sh.rsync(*args, _out=on_out, _err_to_out=True, _out_bufsize=0, _preexec_fn=_die_with_parent,
                     _env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"})
        except sh.ErrorReturnCode as exc:
            text = "".join(output)[-500:].strip().replace("\n", " | ")
            if exc.exit_code in UNREACHABLE_CODES:
                raise RsyncUnreachable(f"无法连接 rsync 服务 {parsed.hostname}:{parsed.port}", f"cannot reach rsync at {parsed.hostname}:{parsed.port} (rsync exit {exc.exit_code}): {text}") from exc
            raise LinkError(f"rsync 传输中断（代码 {exc.exit_code}），下次同步会继续",
                            f"rsync transfer interrupted (exit {exc.exit_code}); the next sync resumes it: {text}") from exc
        text = "".join(output)
        match = re.search(r"Total bytes received: ([\d,]+)", text)
        return RsyncResult(int(match.group(1).replace(",", "")) if match else 0)
