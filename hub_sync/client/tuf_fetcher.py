"""python-tuf's ngclient fetches metadata through this httpx fetcher: explicit
connect/read timeouts and an overall deadline, so a hub that hangs or trickles
bytes is given up on instead of blocking the appliance."""

from __future__ import annotations

import time
from typing import Iterator

import httpx
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface

from hub_sync.core.tls import client_tls

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 20.0
DOWNLOAD_DEADLINE_S = 120.0
CHUNK_BYTES = 64 * 1024


class HttpxFetcher(FetcherInterface):
    """A ``FetcherInterface`` on one ``httpx.Client``; close it when done."""

    def __init__(self, connect_timeout_s: float | None = None, read_timeout_s: float | None = None,
                 deadline_s: float | None = None) -> None:
        # module constants read at call time, so tests can patch them short
        self.deadline_s = deadline_s or DOWNLOAD_DEADLINE_S
        self.client = httpx.Client(verify=client_tls(), timeout=httpx.Timeout(read_timeout_s or READ_TIMEOUT_S,
                                                         connect=connect_timeout_s or CONNECT_TIMEOUT_S),
                                   headers={"User-Agent": "school-edge-sync"})

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            resp = self.client.send(self.client.build_request("GET", url), stream=True)
        except httpx.HTTPError as exc:
            raise exceptions.DownloadError(f"{url}: {type(exc).__name__} {exc}") from exc
        if resp.status_code != 200:
            resp.close()
            raise exceptions.DownloadHTTPError(f"{url}: HTTP {resp.status_code}", resp.status_code)
        return self._chunks(url, resp)

    def _chunks(self, url: str, resp: httpx.Response) -> Iterator[bytes]:
        deadline = time.monotonic() + self.deadline_s
        try:
            for chunk in resp.iter_bytes(CHUNK_BYTES):
                if time.monotonic() > deadline:
                    raise exceptions.SlowRetrievalError(f"{url}: slower than {self.deadline_s}s")
                yield chunk
        except httpx.HTTPError as exc:
            raise exceptions.DownloadError(f"{url}: {type(exc).__name__} {exc}") from exc
        finally:
            resp.close()

    def close(self) -> None:
        self.client.close()
