"""Hub accounts: the county bureau's people who use the console, their roles and passwords.

Roles (``ROLES``): ``bureau_admin`` (accounts and everything), ``reviewer`` (the
review queue), ``technician`` (devices), ``viewer`` (reports only) and
``school_head`` (reports for their own school only; bound to one school code).
Passwords are argon2id hashes (argon2-cffi); at most ``ARGON2_CONCURRENT`` are
computed at once in a process and a login that waits longer than
``ARGON2_WAIT_S`` for a turn gets ``BusyError`` (503, Retry-After). Every login is
throttled by ``hub_sync.core.login_throttle`` with the appliance's limits: per
account and per client address, reserved before the password is checked, with
locks that grow. An unknown name is checked against a dummy hash, so it answers
as late as a known one and locks like one (``name:<name>``).
"""

from __future__ import annotations

import contextlib
import functools
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hub_sync.core import login_throttle
from hub_sync.hub import sessions
from hub_sync.hub.console_errors import BusyError, ConsoleError, NotFoundError, SignInError
from hub_sync.hub.database import Database, transaction

__all__ = ["ROLES", "Account", "Accounts", "LIMITS", "argon2_turn"]

ROLES = ("bureau_admin", "reviewer", "technician", "viewer", "school_head")
MIN_PASSWORD_CHARS = 10
MAX_NAME_CHARS = 64
NAME_RE = re.compile(r"^[\w.@-]{2,64}$")
# argon2id costs of a console password (about 0.1 s on a county server); tests may patch them
KDF_MEMORY_KIB = 64 * 1024
KDF_TIME_COST = 2
ARGON2_CONCURRENT = 2
ARGON2_WAIT_S = 1.5
ARGON2_BUSY_RETRY_S = 2
# the appliance's staff-login limits (docs/login-security.md), for the console's logins
LIMITS = login_throttle.Limits(account_max=5, account_window_s=15 * 60, account_lock_s=5 * 60,
                               client_max=30, client_window_s=5 * 60, client_lock_s=5 * 60,
                               growth=2, lock_max_s=4 * 3600, forget_s=24 * 3600,
                               reset_by_zh="请县局管理员重置密码", reset_by_en="ask a bureau admin to set a new password")

_argon2_slots = threading.BoundedSemaphore(ARGON2_CONCURRENT)


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    school: str | None
    status: str
    created_at: float

    @property
    def active(self) -> bool:
        return self.status == "active"


@contextlib.contextmanager
def argon2_turn(wait_s: float | None = None) -> Iterator[None]:
    """Hold one of the process's argon2 turns; ``BusyError`` if none frees up within ``wait_s``."""
    if not _argon2_slots.acquire(timeout=ARGON2_WAIT_S if wait_s is None else wait_s):
        raise BusyError(f"正在核对其他人的登录，请 {ARGON2_BUSY_RETRY_S} 秒后再试",
                        f"busy checking other logins; try again in {ARGON2_BUSY_RETRY_S} s",
                        retry_after_s=ARGON2_BUSY_RETRY_S)
    try:
        yield
    finally:
        _argon2_slots.release()


def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=KDF_TIME_COST, memory_cost=KDF_MEMORY_KIB, parallelism=1)


@functools.lru_cache(maxsize=4)
def _dummy_hash(memory_kib: int, time_cost: int) -> str:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1).hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    """Check a password inside an argon2 turn; a missing hash is checked against a dummy (same time)."""
    with argon2_turn():
        try:
            return PasswordHasher().verify(stored or _dummy_hash(KDF_MEMORY_KIB, KDF_TIME_COST), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _row_to_account(row) -> Account:
    return Account(int(row[0]), row[1], row[2], row[3], row[4], float(row[5]))


_COLS = "id, name, role, school, status, created_at"


class Accounts:
    """The hub's console accounts (all SQL about them is here)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, name: str, role: str, password: str, school: str | None = None) -> Account:
        """Create an account; ``school`` is required for, and only for, ``school_head``."""
        name = (name or "").strip()
        if not NAME_RE.match(name):
            raise ConsoleError(f"账号名 {name!r} 无效：2 到 64 个字母、数字或 . @ - _",
                               f"invalid account name {name!r}: 2 to 64 letters, digits or . @ - _")
        if role not in ROLES:
            raise ConsoleError(f"没有角色 {role!r}；可选：{'、'.join(ROLES)}", f"no role {role!r}; choose one of {', '.join(ROLES)}")
        school = (school or "").strip() or None
        if role == "school_head" and not school:
            raise ConsoleError("校长账号必须绑定一所学校（--school 学校代码）", "a school_head account needs its school (--school CODE)")
        if role != "school_head" and school:
            raise ConsoleError("只有校长账号绑定学校", "only a school_head account is bound to a school")
        self._check_password(password)
        with argon2_turn(30.0):
            hashed = _hasher().hash(password)
        now = time.time()
        with transaction(self.db):
            if self.db.execute("select 1 from accounts where lower(name) = lower(?)", [name]).fetchone():
                raise ConsoleError(f"账号 {name} 已存在", f"account {name} already exists")
            new_id = self.db.execute("insert into accounts (name, role, school, password_hash, created_at, updated_at)"
                                     " values (?, ?, ?, ?, ?, ?) returning id", [name, role, school, hashed, now, now]).scalar()
        return self.get(new_id)

    @staticmethod
    def _check_password(password: str) -> None:
        if len(password or "") < MIN_PASSWORD_CHARS:
            raise ConsoleError(f"密码至少 {MIN_PASSWORD_CHARS} 位", f"the password needs at least {MIN_PASSWORD_CHARS} characters")

    def get(self, account_id: int) -> Account:
        row = self.db.execute(f"select {_COLS} from accounts where id = ?", [account_id]).fetchone()
        if row is None:
            raise NotFoundError(f"没有账号 #{account_id}", f"no account #{account_id}")
        return _row_to_account(row)

    def by_name(self, name: str) -> Account:
        row = self.db.execute(f"select {_COLS} from accounts where lower(name) = lower(?)", [(name or "").strip()]).fetchone()
        if row is None:
            raise NotFoundError(f"没有账号 {name}", f"no account {name}")
        return _row_to_account(row)

    def all(self) -> list[Account]:
        return [_row_to_account(r) for r in self.db.execute(f"select {_COLS} from accounts order by name")]

    def disable(self, name: str) -> Account:
        """Disable an account: it can no longer log in, and its sessions end now."""
        account = self.by_name(name)
        with transaction(self.db):
            self.db.execute("update accounts set status = 'disabled', updated_at = ? where id = ?", [time.time(), account.id])
            sessions.end_all(self.db, account.id)
        return self.get(account.id)

    def set_password(self, name: str, password: str) -> Account:
        """A new password: the account's lock and its sessions end."""
        account = self.by_name(name)
        self._check_password(password)
        with argon2_turn(30.0):
            hashed = _hasher().hash(password)
        with transaction(self.db):
            self.db.execute("update accounts set password_hash = ?, updated_at = ? where id = ?", [hashed, time.time(), account.id])
            login_throttle.clear(self.db, f"acct:{account.id}")
            sessions.end_all(self.db, account.id)
        return account

    def login(self, name: str, password: str, client: str) -> tuple[Account, str]:
        """Check a password (throttled); return the account and a new session token."""
        name = (name or "").strip()[:MAX_NAME_CHARS]
        row = self.db.execute(f"select {_COLS}, password_hash from accounts where lower(name) = lower(?)", [name]).fetchone() if name else None
        account = _row_to_account(row) if row else None
        stored = row[6] if row is not None and account.active else None
        key = f"acct:{account.id}" if account else f"name:{name.lower()}"
        attempt = login_throttle.reserve(self.db, LIMITS, key, f"client:{client}")
        try:
            right = _verify(stored, password or "")
        except BaseException:  # not checked (no argon2 turn free): give the attempt back
            login_throttle.release(self.db, attempt)
            raise
        if not right:
            login_throttle.settle(self.db, LIMITS, attempt, right=False)
            raise SignInError("账号或密码不对，请再试一次", "wrong account or password; try again")
        with transaction(self.db):  # the outcome and the session together
            login_throttle.settle(self.db, LIMITS, attempt, right=True)
            token = sessions.create(self.db, account.id, client)
        return account, token
