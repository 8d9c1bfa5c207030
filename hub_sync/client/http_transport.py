"""Fetching content files over HTTP with Range resume: the fallback when the
hub's rsync port cannot be reached. Never reads more than the declared length
plus one byte, so a hub sending endless data is cut off and refused."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import httpx

from hub_sync.core.errors import CorruptBlobError, LinkError
from hub_sync.core.tls import client_tls

HTTP_CONNECT_TIMEOUT_S = 10.0
HTTP_READ_TIMEOUT_S = 30.0
CHUNK_BYTES = 256 * 1024


def http_fetch(client: httpx.Client, hub_url: str, sha256: str, length: int, dest: Path,
               progress: Callable[[int], None] | None = None) -> int:
    """Complete ``dest`` (resuming what is there) with blob ``sha256``; return bytes received."""
    have = dest.stat().st_size if dest.exists() else 0
    if have > length:
        dest.unlink()
        have = 0
    if have == length:
        return 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    url = f"{hub_url.rstrip('/')}/content/{sha256}"
    received = 0
    try:
        with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 200:
                have = 0  # the server ignored the range: start over
            elif resp.status_code != 206:
                raise LinkError(f"平台返回 HTTP {resp.status_code}", f"hub answered HTTP {resp.status_code} for {sha256[:12]}…")
            with dest.open("ab" if have else "wb") as out:
                for chunk in resp.iter_bytes(CHUNK_BYTES):
                    if have + received + len(chunk) > length:
                        out.close()
                        dest.unlink(missing_ok=True)
                        raise CorruptBlobError(f"文件 {sha256[:12]}… 超过声明的 {length} 字节，已拒收",
                                               f"file {sha256[:12]}… is larger than its declared {length} bytes; refused")
                    out.write(chunk)
                    received += len(chunk)
                    if progress:
                        progress(have + received)
    except httpx.HTTPError as exc:
        raise LinkError("下载中断，下次同步会继续", f"HTTP download interrupted ({type(exc).__name__}); the next sync resumes it") from exc
    return received


def http_client() -> httpx.Client:
    """A client with explicit timeouts for content downloads."""
    return httpx.Client(verify=client_tls(), timeout=httpx.Timeout(HTTP_READ_TIMEOUT_S, connect=HTTP_CONNECT_TIMEOUT_S))
