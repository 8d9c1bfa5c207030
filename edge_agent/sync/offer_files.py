"""Offered teacher uploads' files, sent up to the hub's review queue at each sync.

The ``shared`` usage event tells the hub what a teacher offered; this module sends
the files themselves (format and routes: ``hub_sync.formats.offer_upload``). It
asks the hub which files of this device's offers it still lacks and how much of
each it holds already (one signed claim), then uploads each from there
(``Content-Range``) with a signed claim of its own, streamed from the store; the
hub keeps what arrives, also from a cut link, and checks the whole file against
its hash. Each file is retried a few times with backoff (``tenacity``) within one
sync, each try resuming where the hub's copy ends; what still fails is logged and
resumed at the next sync. A finished file is never sent twice. Never holds the
usage sync up.
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

ATTEMPTS = 4             # per file and sync (a cut link costs one try to learn where to resume)
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
def _put(appliance: Appliance, client: httpx.Client, hub_url: str, signer, sha256: str, size: int,
         offsets: dict[str, int | None]) -> bool:
    """Send the file from where the hub's part ends (``offsets``, kept up to date between tries;
    None after a failure that may have left part of it there: the hub is asked first)."""
    if offsets.get(sha256, 0) is None:
        try:
            wanted, held = _wanted(appliance, client, hub_url, signer, [sha256])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise _Retryable(str(exc)) from exc
        if sha256 not in wanted:  # the hub has it whole after all
            return True
        offsets[sha256] = held.get(sha256, 0)
    start = min(offsets.get(sha256) or 0, size)
    headers = {CLAIM_HEADER: claim_header(appliance.device_id, sha256, signer), "Content-Type": "application/octet-stream",
               "Content-Length": str(size - start)}
    if size:
        headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
    try:
        with appliance.store.open(sha256) as f:
            f.seek(start)
            response = client.put(hub_url + FILES_PATH + sha256, content=f, headers=headers)
    except httpx.HTTPError as exc:
        offsets[sha256] = None  # where the hub got to is unknown now: asked on the next try
        raise _Retryable(str(exc)) from exc
    if response.status_code in (202, 409):  # cut short, or the part ends elsewhere: resume where the hub says
        try:
            body = response.json()
            offsets[sha256] = int(body.get("offset", (body.get("error") or {}).get("details", {}).get("offset", 0)))
        except (ValueError, TypeError, AttributeError):
            offsets[sha256] = 0
        raise _Retryable(f"HTTP {response.status_code}: resume at {offsets[sha256]}")
    if response.status_code >= 500:
        offsets[sha256] = None  # a front may have passed part of the body on before failing
        raise _Retryable(f"HTTP {response.status_code}")
    if response.status_code != 200:  # refused (size, hash, not wanted): another try now would be refused too
        log.warning("hub refused offered file %s (HTTP %d): %s", sha256[:12], response.status_code, response.text[:300])
        return False
    return True


def _wanted(appliance: Appliance, client: httpx.Client, hub_url: str, signer, files: list[str]) -> tuple[set[str], dict]:
    """(the files the hub lacks, how much of each it holds), from one signed claim."""
    response = client.post(hub_url + WANTED_PATH, content=claim(appliance.device_id, files, signer),
                           headers={"Content-Type": CLAIM_CONTENT_TYPE})
    if response.status_code != 200:
        raise ValueError(f"hub did not say which offered files it lacks (HTTP {response.status_code}): {response.text[:300]}")
    answer = response.json()
    return set(answer["wanted"]), {k: int(v) for k, v in (answer.get("offsets") or {}).items()}


def send(appliance: Appliance, client: httpx.Client, hub_url: str) -> int:
    """Upload the offered files the hub lacks; returns how many were sent (failures are logged)."""
    files = offered_files(appliance)
    if not files:
        return 0
    hub_url = hub_url.rstrip("/")
    signer = load_signer(appliance.data_dir / DEVICE_KEY_FILE)
    try:
        wanted, offsets = _wanted(appliance, client, hub_url, signer, [s for s, _ in files])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("offered files not sent: %s", exc)
        return 0
    sent = 0
    for sha256, size in files:
        if sha256 not in wanted or not appliance.store.has(sha256):
            continue
        try:
            sent += _put(appliance, client, hub_url, signer, sha256, size, offsets)
        except RetryError as exc:
            log.warning("offered file %s not sent after %d tries (%s); next sync tries again", sha256[:12], ATTEMPTS,
                        exc.last_attempt.exception())
    return sent
