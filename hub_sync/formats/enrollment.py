"""Signed requests a device sends the hub: enrollment and channel choices.

Both are DSSE envelopes (``hub_sync.formats.envelope``) signed by the device key. An
enrollment request also carries the public key it was signed with (proof that
the device holds the private key) and the one-time token of its provisioning
bundle, so only a device the county provisioned can enroll (one device per token,
before the token expires: ``hub_sync.hub.registry``).
"""

from __future__ import annotations

import hashlib
import json
import time

from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signer

from hub_sync.formats.envelope import canonical_json, open_envelope, seal
from hub_sync.core.errors import FormatError
from hub_sync.core.keys import public_key_dict, public_key_from_dict

ENROLLMENT_KIND = "enrollment-request"
SUBSCRIPTION_KIND = "subscription-request"
SCHOOL_CODE_DIGITS = 10
TOKEN_LIFETIME_DAYS = 30  # a bundle's enrollment token expires this long after ``provision make`` (--token-days)


def check_school_code(code: str) -> None:
    """一校一码: ten digits."""
    if not (isinstance(code, str) and len(code) == SCHOOL_CODE_DIGITS and code.isdigit()):
        raise FormatError(f"学校识别码 {code!r} 无效，应为 10 位数字", f"school code {code!r} is invalid; it has 10 digits")


def token_hash(token: str) -> str:
    """The hub stores only the hash of a provisioning token."""
    return hashlib.sha256(token.encode()).hexdigest()


def make_enrollment(signer: Signer, device_id: str, school_code: str, school_name: str, token: str) -> bytes:
    """An enrollment request signed by the device key."""
    payload = {"device_id": device_id, "school_code": school_code, "school_name": school_name, "token": token,
               "public_key": public_key_dict(signer), "created_at": time.time()}
    return seal(ENROLLMENT_KIND, canonical_json(payload), signer)


def read_enrollment(data: bytes) -> dict:
    """Verify an enrollment request against the key inside it; return its payload."""
    try:
        unverified = json.loads(Envelope.from_dict(json.loads(data)).payload)
        key = public_key_from_dict(unverified["public_key"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError("登记请求格式无效", f"malformed enrollment request: {exc}") from exc
    payload, _ = open_envelope(data, ENROLLMENT_KIND, [key])
    request = json.loads(payload)
    check_school_code(request.get("school_code", ""))
    if not isinstance(request.get("device_id"), str) or not request["device_id"]:
        raise FormatError("登记请求缺少设备编号", "enrollment request has no device id")
    return request


def make_subscription(signer: Signer, device_id: str, school_code: str, channel: str, subscribe: bool) -> bytes:
    """A signed request to subscribe to (or leave) an optional channel."""
    payload = {"device_id": device_id, "school_code": school_code, "channel": channel, "subscribe": bool(subscribe),
               "at": time.time()}
    return seal(SUBSCRIPTION_KIND, canonical_json(payload), signer)


def peek_device(data: bytes) -> str:
    """The device id a request claims (to look up its key before verifying)."""
    try:
        return str(json.loads(Envelope.from_dict(json.loads(data)).payload)["device_id"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FormatError("请求格式无效", f"malformed request: {exc}") from exc
