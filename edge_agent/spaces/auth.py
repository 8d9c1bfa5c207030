"""Credentials and lockout: argon2id hashes, PINs, picture passwords, QR card
tokens, and the failure counters that stop brute force.

Staff passwords and student PINs/picture passwords are all argon2id hashes, with
different costs (see ``const``). Card tokens are 128-bit random values, so a
plain SHA-256 is enough to store them (nothing to brute-force).
Failure counters live in SQLite so a restart does not reset a lockout.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub_sync.core.sqlite_db import transaction

from edge_agent.spaces import const
from edge_agent.spaces.errors import LockedError


def _hasher(staff: bool) -> PasswordHasher:
    # built per call from the constants so that tests can patch them cheap
    if staff:
        return PasswordHasher(time_cost=const.STAFF_KDF_TIME_COST, memory_cost=const.STAFF_KDF_MEMORY_KIB, parallelism=1)
    return PasswordHasher(time_cost=const.STUDENT_KDF_TIME_COST, memory_cost=const.STUDENT_KDF_MEMORY_KIB, parallelism=1)


def hash_secret(secret: str, staff: bool) -> str:
    """An argon2id hash of a password (staff) or PIN/picture password (student)."""
    return _hasher(staff).hash(secret)


def verify_secret(stored: str, secret: str) -> bool:
    """True if ``secret`` matches; the parameters are read from the stored hash."""
    if not stored:
        return False
    try:
        return PasswordHasher().verify(stored, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
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


# -- lockout ---------------------------------------------------------------------

def check_not_locked(db: sqlite_utils.Database, keys: list[str], now: float | None = None) -> None:
    """Raise LockedError if any of ``keys`` (acct:<id>, client:<addr>) is locked."""
    now = time.time() if now is None else now
    marks = ",".join("?" * len(keys))
    row = db.execute(f"select max(locked_until) from login_failures where key in ({marks})", keys).fetchone()
    if row and row[0] and row[0] > now:
        wait = int(row[0] - now) + 1
        raise LockedError(
            f"尝试次数太多，已暂时锁定。请 {wait} 秒后再试，或请老师重置密码",
            f"too many failed attempts; locked, try again in {wait} s or ask the teacher to reset it",
            retry_after_s=wait,
        )


def record_failure(db: sqlite_utils.Database, account_key: str | None, client_key: str, now: float | None = None) -> None:
    """Count one failed login for the account and the client; lock whichever is over its limit.

    Committed on its own, before the login request fails, so it is never rolled back.
    """
    now = time.time() if now is None else now
    limits = [(client_key, const.CLIENT_MAX_FAILURES, const.CLIENT_WINDOW_S, const.CLIENT_LOCK_S)]
    if account_key:
        limits.append((account_key, const.ACCOUNT_MAX_FAILURES, const.ACCOUNT_LOCK_S, const.ACCOUNT_LOCK_S))
    with transaction(db):
        for key, max_failures, window_s, lock_s in limits:
            row = db.execute("select failures, first_at from login_failures where key = ?", [key]).fetchone()
            failures, first_at = (row[0] + 1, row[1]) if row and now - row[1] < window_s else (1, now)
            locked_until = now + lock_s if failures >= max_failures else 0
            if locked_until:
                failures, first_at = 0, now  # after the lock, a fresh count
            db.execute("insert or replace into login_failures (key, failures, first_at, locked_until) values (?, ?, ?, ?)",
                       [key, failures, first_at, locked_until])


def clear_failures(db: sqlite_utils.Database, account_key: str) -> None:
    with transaction(db):
        db.execute("delete from login_failures where key = ?", [account_key])
