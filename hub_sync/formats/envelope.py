"""Signed artefacts going up (usage batches, enrollment requests, acknowledgements):
DSSE envelopes (securesystemslib) over canonical JSON.

A payload type names what is inside, so a signed acknowledgement can never be
passed off as a usage batch; verification happens before anything is parsed.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import Key, Signer

from hub_sync.core.errors import FormatError, SignatureError

PAYLOAD_PREFIX = "application/vnd.school-edge."


def content_type(kind: str) -> str:
    """The HTTP Content-Type of an envelope of type ``kind`` (its payload type plus ``+json``)."""
    return PAYLOAD_PREFIX + kind + "+json"


def canonical_json(data: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no spaces, UTF-8."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def seal(kind: str, payload: bytes, signer: Signer) -> bytes:
    """Sign ``payload`` as a DSSE envelope of type ``kind``; return its JSON bytes."""
    env = Envelope(payload=payload, payload_type=PAYLOAD_PREFIX + kind, signatures={})
    env.sign(signer)
    return canonical_json(env.to_dict())


def open_envelope(data: bytes, kind: str, keys: list[Key], threshold: int = 1) -> tuple[bytes, list[str]]:
    """Verify an envelope of type ``kind`` against ``keys``; return (payload, signing key ids).

    Raises FormatError for anything that is not such an envelope and SignatureError
    when no trusted key signed it.
    """
    try:
        env = Envelope.from_dict(json.loads(data))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, base64.binascii.Error) as exc:
        raise FormatError("签名文件格式无效", f"not a signed envelope: {exc}") from exc
    if env.payload_type != PAYLOAD_PREFIX + kind:
        raise FormatError(f"文件类型不对：应为 {kind}", f"wrong artefact type {env.payload_type!r}, expected {kind}")
    try:
        accepted = env.verify(keys, threshold)
    except VerificationError as exc:
        raise SignatureError("签名无效或来自未知的密钥，已拒收", f"bad signature or unknown key: {exc}") from exc
    return env.payload, sorted(accepted)
