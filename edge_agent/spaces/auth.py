"""Credentials: staff passwords, student PINs and picture passwords, QR card tokens.

* Staff (and parents') passwords are argon2id hashes (argon2-cffi), costs in
  ``const``. At most ``const.ARGON2_CONCURRENT`` argon2 computations run at once
  in a process (each holds 64 MiB); a login waits ``ARGON2_WAIT_S`` for a turn,
  then gets ``BusyError`` (503, Retry-After).
* Student PINs and picture passwords are keyed hashes,
  ``$hmac-sha256$k=<key id>$<salt>$<mac>``: HMAC-SHA256 over a per-person salt
  and the secret, under the device's login key (``login_key.py``). A memory-hard
  KDF adds little to a secret of 10,000 values that online throttling
  (``throttle.py``) does not already give, and would cost a class of 40 logging
  in at once several seconds of CPU and memory. PIN hashes made before (argon2id)
  still verify, and ``needs_rehash`` tells the login to replace them by a keyed
  hash once the student has logged in with the right PIN (the only moment the
  appliance knows it).
* Card tokens are 128-bit random values, so a plain SHA-256 is enough to store
  them (nothing to brute-force).
* An unknown account is checked against a dummy secret of the same kind
  (``dummy_check``), so it costs the same time as a known one.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
import threading
from typing import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from edge_agent.spaces import const
from edge_agent.spaces.errors import BusyError

log = logging.getLogger(__name__)

KEYED_PREFIX = "$hmac-sha256$"
_argon2_slots = threading.BoundedSemaphore(const.ARGON2_CONCURRENT)


@contextlib.contextmanager
def argon2_turn(wait_s: float | None = None) -> Iterator[None]:
    """Hold one of the process's argon2 turns; ``BusyError`` if none frees up within ``wait_s``."""
    wait_s = const.ARGON2_WAIT_S if wait_s is None else wait_s
    if not _argon2_slots.acquire(timeout=wait_s):
        retry = const.ARGON2_BUSY_RETRY_S
        raise BusyError(f"正在核对其他人的登录，请 {retry} 秒后再试",
                        f"busy checking other logins; try again in {retry} s", retry_after_s=retry)
    try:
        yield
    finally:
        _argon2_slots.release()


def _hasher(staff: bool) -> PasswordHasher:
    # built per call from the constants so that tests can patch them cheap
    if staff:
        return PasswordHasher(time_cost=const.STAFF_KDF_TIME_COST, memory_cost=const.STAFF_KDF_MEMORY_KIB, parallelism=1)
    return PasswordHasher(time_cost=const.STUDENT_KDF_TIME_COST, memory_cost=const.STUDENT_KDF_MEMORY_KIB, parallelism=1)


def hash_secret(secret: str, staff: bool = True) -> str:
    """An argon2id hash of a password (``staff``; or, with ``staff=False``, the old
    kind of PIN hash, kept for tests and benchmarks of the migration)."""
    with argon2_turn(const.ARGON2_HASH_WAIT_S):
        return _hasher(staff).hash(secret)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def key_id(key: bytes) -> str:
    """A short name of a login key, stored in each keyed hash (tells a replaced key apart)."""
    return hashlib.sha256(b"school-edge login key id\0" + key).hexdigest()[:8]


def _mac(key: bytes, salt: bytes, secret: str) -> bytes:
    return hmac.new(key, salt + secret.encode("utf-8"), hashlib.sha256).digest()


def hash_pin(secret: str, key: bytes) -> str:
    """The keyed hash of a PIN or picture password under the device's login ``key``."""
    salt = secrets.token_bytes(const.PIN_SALT_BYTES)
    return f"{KEYED_PREFIX}k={key_id(key)}${_b64(salt)}${_b64(_mac(key, salt, secret))}"


def _verify_keyed(stored: str, secret: str, key: bytes) -> bool:
    try:
        kid, salt, mac = stored[len(KEYED_PREFIX):].split("$")
        salt_raw = base64.b64decode(salt + "=" * (-len(salt) % 4))
    except ValueError:
        return False
    expected = _b64(_mac(key, salt_raw, secret))
    if kid != f"k={key_id(key)}":
        log.warning("a PIN hash was made with another login key (keys/login.key replaced?); the teacher must reset that PIN")
        return False
    return hmac.compare_digest(expected, mac)


def verify_secret(stored: str, secret: str, key: bytes = b"") -> bool:
    """True if ``secret`` matches ``stored`` (argon2id: parameters read from the hash,
    inside an argon2 turn; keyed: under ``key``)."""
    if stored.startswith(KEYED_PREFIX):
        return bool(key) and _verify_keyed(stored, secret, key)
    if not stored.startswith("$argon2"):
        return False
    with argon2_turn():
        try:
            return PasswordHasher().verify(stored, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(kind: str, stored: str) -> bool:
    """A student's PIN or picture password still stored the old way (argon2id)."""
    return kind in ("pin", "picture") and stored.startswith("$argon2")


@functools.lru_cache(maxsize=4)
def _dummy_password_hash(memory_kib: int, time_cost: int) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1).hash(secrets.token_urlsafe(16))


def dummy_check(secret: str, staff: bool, key: bytes = b"") -> bool:
    """Spend the time a real check of this kind spends; always False.

    For an unknown (or not allowed) account, so that its answer comes as late
    as a known account's: the dummy password hash has the current staff costs.
    """
    if staff:
        with argon2_turn():
            dummy = _dummy_password_hash(const.STAFF_KDF_MEMORY_KIB, const.STAFF_KDF_TIME_COST)
            with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
                PasswordHasher().verify(dummy, secret)
        return False
    _verify_keyed(hash_pin("", key or b"\0" * 32), secret, key or b"\0" * 32)
    return False


def new_pin() -> str:
    return f"{secrets.randbelow(10 ** const.PIN_DIGITS):0{const.PIN_DIGITS}d}"


def new_password() -> str:
    """A first password for a staff member, easy to read out (no 0/O, 1/l)."""
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(10))


def new_pictures() -> list[str]:
    return [secrets.choice(const.PICTURES) for _ in range(const.PICTURE_COUNT)]


def picture_secret(pictures: list[str]) -> str:
    return "pic:" + "-".join(pictures)


def new_card_token() -> str:
    return secrets.token_urlsafe(16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
