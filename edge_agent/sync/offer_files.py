"""Offered teacher uploads' files, sent up to the hub's review queue at each sync.

The ``shared`` usage event tells the hub what a teacher offered; this module sends
the files themselves (format and routes: ``hub_sync.formats.offer_upload``). It
asks the hub which files of this device's offers it still lacks (one signed
claim), then uploads each with a signed claim of its own, streamed from the
store; the hub checks every byte against the hash. Each file is retried a few
times with backoff (``tenacity``) within one sync; what still fails is logged and
sent at the next sync, starting from the files the hub still lacks, so a cut link
never sends a finished file twice. Never holds the usage sync up.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
from tenacity import RetryError, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from hub_sync.core.keys import load_signer
from hub_sync.formats.offer_upload import CLAIM_CONTENT_TYPE, CLAIM_HEADER, FILES_PATH, WANTED_PATH, claim, claim_header

from edge_agent.const import DEVICE_KEY_FILE
from edge_agent.library.catalogue import Catalogue

if TYPE_CHECKING:  # the Appliance sits above this layer; only its type is needed here
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

ATTEMPTS = 3             # per file and sync
BACKOFF_FIRST_S = 1.0    # then 2 s, 4 s ... up to BACKOFF_MAX_S
BACKOFF_MAX_S = 10.0


class _Retryable(Exception):
    """A failure worth another try now (the link, or the hub answering 5xx)."""


def offered_files(appliance: Appliance) -> list[tuple[str, int]]:
    """(sha256, size) of every file of this device's resources offered to the county and not yet decided."""
    out: dict[str, int] = {}
    catalogue = Catalogue(appliance.db)
    for (resource_id,) in appliance.db.execute(
            "select resource_id from teacher_resources where share_status in ('offered', 'pending')").fetchall():
        for f in catalogue.get(resource_id).files:
            out[f.sha256] = f.size
    return sorted(out.items())


@retry(retry=retry_if_exception_type(_Retryable), stop=stop_after_attempt(ATTEMPTS),
       wait=wait_exponential(multiplier=BACKOFF_FIRST_S, max=BACKOFF_MAX_S), reraise=False)
def _put(appliance: Appliance, client: httpx.Client, hub_url: str, signer, sha256: str, size: int) -> bool:
    try:
        with appliance.store.open(sha256) as f:
            response = client.put(hub_url + FILES_PATH + sha256, content=f,
                                  headers={CLAIM_HEADER: claim_header(appliance.device_id, sha256, signer),
                                           "Content-Length": str(size), "Content-Type": "application/octet-stream"})
    except httpx.HTTPError as exc:
        raise _Retryable(str(exc)) from exc
    if response.status_code >= 500:
        raise _Retryable(f"HTTP {response.status_code}")
    if response.status_code != 200:  # refused (size, hash, not wanted): another try now would be refused too
        log.warning("hub refused offered file %s (HTTP %d): %s", sha256[:12], response.status_code, response.text[:300])
        return False
    return True


def send(appliance: Appliance, client: httpx.Client, hub_url: str) -> int:
    """Upload the offered files the hub lacks; returns how many were sent (failures are logged)."""
    files = offered_files(appliance)
    if not files:
        return 0
    hub_url = hub_url.rstrip("/")
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    try:
        response = client.post(hub_url + WANTED_PATH, content=claim(appliance.device_id, [s for s, _ in files], signer),
                               headers={"Content-Type": CLAIM_CONTENT_TYPE})
        if response.status_code != 200:
            log.warning("hub did not say which offered files it lacks (HTTP %d): %s", response.status_code, response.text[:300])
            return 0
        wanted = set(response.json()["wanted"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("offered files not sent: %s", exc)
        return 0
    sent = 0
    for sha256, size in files:
        if sha256 not in wanted or not appliance.store.has(sha256):
            continue
        try:
            sent += _put(appliance, client, hub_url, signer, sha256, size)
        except RetryError as exc:
            log.warning("offered file %s not sent after %d tries (%s); next sync tries again", sha256[:12], ATTEMPTS,
                        exc.last_attempt.exception())
    return sent
