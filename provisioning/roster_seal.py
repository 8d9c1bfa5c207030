"""The roster on a provisioning stick, encrypted with a passphrase.

A lost stick must reveal no personal data of minors (PIPL). The technician types a
passphrase at the county and again on site; nothing else is needed on the device,
which has no county key before it is provisioned. The passphrase goes through
Argon2id (memory-hard, so guessing it on a GPU is expensive; argon2-cffi, the
library the appliance already uses for passwords), the 32-byte result is an
AES-256-GCM key (``cryptography``'s AESGCM). The header carries the KDF
parameters, the salt and the school code; the whole header is the associated
data, so a roster cannot be moved to another school's stick, and changing the
parameters or the school code makes decryption fail.

Sealed file (UTF-8 JSON)::

    {"format": "school-edge-roster/1", "school_code": "...",
     "kdf": {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 1, "salt": b64},
     "aead": "AES-256-GCM", "nonce": b64, "ciphertext": b64}

Pure functions: bytes in, bytes out.
"""

from __future__ import annotations

import base64
import json
import os

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub_sync.formats.envelope import canonical_json

from provisioning.errors import RosterError, WrongPassphraseError, WrongSchoolError

FORMAT = "school-edge-roster/1"
# OWASP's first Argon2id choice is m=19 MiB, t=2; a roster is opened once per visit,
# so spend more: 64 MiB, 3 passes (about a third of a second on the appliance's board).
DEFAULT_TIME_COST = 3
DEFAULT_MEMORY_KIB = 64 * 1024
DEFAULT_PARALLELISM = 1
# Refuse headers asking for absurd work (a crafted stick must not hang the device).
MAX_MEMORY_KIB = 1024 * 1024
MAX_TIME_COST = 20
MIN_PASSPHRASE_CHARS = 8


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


def _derive(passphrase: str, kdf: dict) -> bytes:
    return hash_secret_raw(passphrase.encode("utf-8"), _unb64(kdf["salt"]), time_cost=int(kdf["time_cost"]),
                           memory_cost=int(kdf["memory_kib"]), parallelism=int(kdf["parallelism"]),
                           hash_len=32, type=Type.ID)


def check_passphrase(passphrase: str) -> None:
    """Refuse a passphrase too short to protect children's data."""
    if len(passphrase or "") < MIN_PASSPHRASE_CHARS:
        raise RosterError(f"口令至少需要 {MIN_PASSPHRASE_CHARS} 个字符", f"the passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")


def seal_roster(roster: bytes, passphrase: str, school_code: str, *, time_cost: int = DEFAULT_TIME_COST,
                memory_kib: int = DEFAULT_MEMORY_KIB, parallelism: int = DEFAULT_PARALLELISM) -> bytes:
    """Encrypt ``roster`` (the file as the registry exported it) for ``school_code``."""
    check_passphrase(passphrase)
    header = {
        "format": FORMAT, "school_code": school_code, "aead": "AES-256-GCM",
        "kdf": {"name": "argon2id", "time_cost": time_cost, "memory_kib": memory_kib,
                "parallelism": parallelism, "salt": _b64(os.urandom(16))},
        "nonce": _b64(os.urandom(12)),
    }
    key = _derive(passphrase, header["kdf"])
    ciphertext = AESGCM(key).encrypt(_unb64(header["nonce"]), roster, canonical_json(header))
    return canonical_json({**header, "ciphertext": _b64(ciphertext)})


def sealed_school(sealed: bytes) -> str:
    """The school code a sealed roster claims (unauthenticated until opened)."""
    return _parse(sealed)["school_code"]


def open_roster(sealed: bytes, passphrase: str, school_code: str) -> bytes:
    """Decrypt a sealed roster for ``school_code``; the roster bytes.

    Raises WrongSchoolError when it was sealed for another school,
    WrongPassphraseError when the passphrase is wrong (or the file was changed),
    RosterError when it is not a sealed roster at all.
    """
    doc = _parse(sealed)
    if doc["school_code"] != school_code:
        raise WrongSchoolError(
            f"花名册属于学校 {doc['school_code']}，不是本校 {school_code}。请用本校的U盘",
            f"the roster belongs to school {doc['school_code']}, not {school_code}; use this school's stick")
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    header["school_code"] = school_code  # bind to the school we expect, whatever the file says
    try:
        key = _derive(passphrase, header["kdf"])
        return AESGCM(key).decrypt(_unb64(header["nonce"]), _unb64(doc["ciphertext"]), canonical_json(header))
    except InvalidTag as exc:
        raise WrongPassphraseError("口令错误，花名册无法解密。请核对口令后重试",
                                   "wrong passphrase: the roster cannot be decrypted; check the passphrase and try again") from exc
    except (ValueError, TypeError) as exc:
        raise RosterError("花名册文件已损坏", f"the sealed roster is damaged: {exc}") from exc


def _parse(sealed: bytes) -> dict:
    try:
        doc = json.loads(sealed)
        kdf = doc["kdf"]
        ok = (doc.get("format") == FORMAT and kdf.get("name") == "argon2id" and doc.get("aead") == "AES-256-GCM"
              and isinstance(doc.get("school_code"), str) and isinstance(doc.get("ciphertext"), str)
              and 1 <= int(kdf["time_cost"]) <= MAX_TIME_COST and 8 <= int(kdf["memory_kib"]) <= MAX_MEMORY_KIB
              and 1 <= int(kdf["parallelism"]) <= 16)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RosterError("不是加密的花名册文件", f"not a sealed roster: {exc}") from exc
    if not ok:
        raise RosterError("花名册文件格式不受支持", "unsupported sealed roster format")
    return doc
