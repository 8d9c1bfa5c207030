"""The wire format of an offered upload's files, sent by the appliance to the hub.

A teacher's ``shared`` usage event tells the hub what was offered (metadata and
the files' SHA-256). The files follow in two steps, each signed by the device key
(DSSE, ``hub_sync.formats.envelope``), so only an enrolled device can send, and
only files of its own pending offers:

    POST /api/v1/hub/offers/wanted        body: envelope kind ``offer-files``,
                                          payload {"device", "files": [sha256 ...]}
                                          200 {"wanted": [sha256 ...], "offsets": {sha256: bytes}}:
                                          the ones the hub lacks, and how much of each it holds
    PUT  /api/v1/hub/offers/files/<sha>   body: the file's bytes from ``offsets[sha]`` on,
                                          ``Content-Range: bytes START-END/TOTAL`` (without it:
                                          the whole file, nothing kept if cut);
                                          header ``X-Offer-Claim``: the same kind of
                                          envelope (base64), payload {"device", "files": [sha]}
                                          200 {"stored": sha}; 202 {"offset"} cut short (kept);
                                          400 range, size or hash wrong, 403 not signed by an
                                          active device or not wanted, 409 {"offset"} START is
                                          not where the hub's copy ends, 413 bigger than the hub accepts

The hub keeps what arrives of a ranged upload, also when the link drops, and checks
the whole file against its hash before it enters the store (a wrong one is deleted).
A file the hub already has is not sent again; a cut one resumes where it stopped.
"""

from __future__ import annotations

import base64
import json

from securesystemslib.signer import Signer

from hub_sync.core.blobstore import is_sha256
from hub_sync.core.errors import FormatError
from hub_sync.formats.envelope import canonical_json, content_type, seal

__all__ = ["CLAIM_KIND", "CLAIM_CONTENT_TYPE", "CLAIM_HEADER", "WANTED_PATH", "FILES_PATH", "claim", "claim_header",
           "read_claim"]

CLAIM_KIND = "offer-files"
CLAIM_CONTENT_TYPE = content_type(CLAIM_KIND)
CLAIM_HEADER = "X-Offer-Claim"
WANTED_PATH = "/api/v1/hub/offers/wanted"
FILES_PATH = "/api/v1/hub/offers/files/"
MAX_FILES_PER_CLAIM = 1000


def claim(device_id: str, files: list[str], signer: Signer) -> bytes:
    """A signed claim: ``device_id`` holds these files of its offers."""
    return seal(CLAIM_KIND, canonical_json({"device": device_id, "files": sorted(set(files))}), signer)


def claim_header(device_id: str, sha256: str, signer: Signer) -> str:
    """The ``X-Offer-Claim`` header value for one file's upload."""
    return base64.b64encode(claim(device_id, [sha256], signer)).decode("ascii")


def read_claim(payload: bytes) -> tuple[str, list[str]]:
    """(device, files) of a verified claim's payload; ``FormatError`` if malformed."""
    try:
        body = json.loads(payload)
        device, files = str(body["device"]), list(body["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise FormatError("文件声明格式无效", f"malformed offer-files claim: {exc}") from exc
    if len(files) > MAX_FILES_PER_CLAIM or not all(isinstance(f, str) and is_sha256(f) for f in files):
        raise FormatError("文件声明格式无效", "malformed offer-files claim: files must be sha256 hex digests")
    return device, files
