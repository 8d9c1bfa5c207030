"""Login throttling that holds under parallel requests: the rules, shared by the
appliance's staff and student logins and the county hub's console logins.

Every login attempt is throttled on two keys: the account (``acct:<id>``, or
``number:<n>`` for a name nobody has, so that unknown names lock like known
ones) and the client address (``client:<addr>``). The rule, per key:

1. ``reserve`` - in one ``BEGIN IMMEDIATE`` transaction, *before* the secret is
   checked: refuse if the key is locked, or if this window's budget of attempts
   (``Limits.account_max`` / ``Limits.client_max``) is already spent by attempts
   counted earlier or still being checked; otherwise count this attempt as a
   failure. Parallel requests queue on SQLite's write lock, so at most the
   budget's worth of them is ever let through to the check.
2. The caller checks the secret (outside any transaction: argon2 may take 0.1 s).
3. ``settle(..., right=False)`` - the attempt stays counted; if the budget is
   spent and the key is not locked yet, lock it. Each lock lasts ``growth``
   times the previous one (up to ``lock_max_s``) until the key has had no lock
   for ``forget_s``. A lock is only ever raised here, never lowered.
   ``settle(..., right=True)`` - the account's count starts again (its lock, if
   a parallel wrong attempt set one meanwhile, stays); the client's count gives
   this one attempt back (a shared tablet is not punished for its pupils'
   successful logins). ``release`` - nothing was checked (e.g. no argon2 turn
   free): the attempt is given back on every key.

A locked key refuses the right secret too, until the lock ends; only a new
credential clears an account's lock. The counters live in the caller's SQLite
database, in a table made by ``TABLE_SQL`` (plus ``COLUMNS_SQL``), so a restart
keeps every lock, and all worker processes share them. The database is the
appliance's SQLite (``sqlite_utils.Database``) or the hub's (``hub_sync.hub.database.Database``,
SQLite or PostgreSQL), whose ``transaction()`` and ``lock()`` serialise reservations
across processes the same way.

A refusal raises ``LoginLockedError`` (429); a package that needs its own
exception class (the appliance's ``LockedError``) converts it at its boundary.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import sqlite_utils

from hub_sync.core.errors import Problem
from hub_sync.core.sqlite_db import transaction

__all__ = ["Limits", "Attempt", "LoginLockedError", "TABLE_SQL", "COLUMNS_SQL", "reserve", "settle", "release",
           "clear", "locked"]

# The counters' table (the appliance made it in two steps; a new database runs both).
TABLE_SQL = """create table login_failures (
    key text primary key,                 -- acct:<id>, number:<n> or client:<address>
    failures integer not null,
    first_at real not null,
    locked_until real not null default 0
)"""
COLUMNS_SQL = ("lock_level integer not null default 0", "locked_at real not null default 0",
               "wrong_total integer not null default 0")

_COLS = "failures, first_at, locked_until, lock_level, locked_at"


class LoginLockedError(Problem):
    """Too many attempts on an account or from an address; ``details["retry_after_s"]``
    says when to try again (sent as ``Retry-After`` too)."""

    code = "locked"
    http_status = 429


@dataclass(frozen=True)
class Limits:
    """The budgets and lock times (seconds) of one kind of login."""

    account_max: int
    account_window_s: float
    account_lock_s: float
    client_max: int
    client_window_s: float
    client_lock_s: float
    growth: float
    lock_max_s: float
    forget_s: float
    # who can clear an account's lock, said in the refusal
    reset_by_zh: str = "请老师重置"
    reset_by_en: str = "ask a teacher to reset it"


@dataclass(frozen=True)
class Attempt:
    """An attempt reserved by ``reserve``: the keys it was counted on."""

    account: str | None
    client: str

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.account, self.client) if self.account else (self.client,)


def _limits(limits: Limits, key: str) -> tuple[int, float, float]:
    """(budget, window, first lock) of a key."""
    if key.startswith("client:"):
        return limits.client_max, limits.client_window_s, limits.client_lock_s
    return limits.account_max, limits.account_window_s, limits.account_lock_s


def _next_lock_s(limits: Limits, key: str, lock_level: int, locked_at: float, now: float) -> float:
    level = 0 if now - locked_at > limits.forget_s else lock_level
    return min(_limits(limits, key)[2] * limits.growth ** level, limits.lock_max_s)


def _row(db: sqlite_utils.Database, key: str) -> tuple | None:
    return db.execute(f"select {_COLS} from login_failures where key = ?", [key]).fetchone()


@contextlib.contextmanager
def _written_not_synced(db: sqlite_utils.Database) -> Iterator[None]:
    """Commit without waiting for the disk (``synchronous = normal``), then back as it was (full).

    For a reservation: the login's next commit (its session, or its failure) is a
    full one, and it makes this one durable too (the WAL is one file, written in
    order, and that commit syncs it). A class logging in at once then waits for one
    disk sync per login instead of two. A power cut in between loses only
    reservations whose checks never answered anyone.
    """
    if not hasattr(db, "conn") or db.conn.in_transaction:  # the hub's pooled database, or joining a caller's transaction
        yield
        return
    level = db.execute("pragma synchronous").fetchone()[0]
    db.execute("pragma synchronous = normal")
    try:
        yield
    finally:
        db.execute(f"pragma synchronous = {int(level)}")


@contextlib.contextmanager
def _counting(db) -> Iterator[None]:
    """The transaction a reservation checks and counts in, one at a time: SQLite's
    BEGIN IMMEDIATE takes the write lock; on PostgreSQL an advisory lock does."""
    with _written_not_synced(db), transaction(db):
        if hasattr(db, "lock"):
            db.lock("login-throttle")
        yield


def locked(limits: Limits, key: str, wait_s: float, now: float) -> LoginLockedError:
    """The refusal for a locked (or spent) key: what happened and when to try again."""
    wait = max(1, int(wait_s + 0.999))
    at = datetime.fromtimestamp(now + wait).strftime("%H:%M")
    zh_wait = f"{wait} 秒" if wait < 60 else f"{(wait + 59) // 60} 分钟"
    en_wait = f"{wait} s" if wait < 60 else f"{(wait + 59) // 60} min"
    if key.startswith("client:"):
        return LoginLockedError(f"这台设备登录失败的次数太多，已暂时锁定。请 {zh_wait}后（{at} 以后）再试",
                                f"too many failed logins from this device; locked. Try again in {en_wait} (after {at})",
                                retry_after_s=wait)
    return LoginLockedError(f"这个账号尝试次数太多，已暂时锁定，正确的密码现在也不能登录。请 {zh_wait}后（{at} 以后）再试，或{limits.reset_by_zh}",
                            f"too many attempts on this account; locked, even the right secret is refused now. "
                            f"Try again in {en_wait} (after {at}), or {limits.reset_by_en}", retry_after_s=wait)


def reserve(db: sqlite_utils.Database, limits: Limits, account: str | None, client: str,
            now: float | None = None) -> Attempt:
    """Count one attempt on ``account`` and ``client`` before its secret is checked,
    or raise ``LoginLockedError`` (nothing counted) if either is locked or spent."""
    now = time.time() if now is None else now
    attempt = Attempt(account, client)
    with _counting(db):  # check and count under the write lock
        rows = {key: _row(db, key) for key in attempt.keys}
        waits = [(row[2] - now, key) for key, row in rows.items() if row and row[2] > now]
        if waits:
            raise locked(limits, max(waits)[1], max(waits)[0], now)
        updates = []
        for key, row in rows.items():
            budget, window_s, _ = _limits(limits, key)
            failures, first_at, _, lock_level, locked_at = row or (0, now, 0, 0, 0)
            if now - first_at >= window_s:
                failures, first_at = 0, now
            if failures >= budget:  # spent by attempts still being checked: their lock is coming
                raise locked(limits, key, _next_lock_s(limits, key, lock_level, locked_at, now), now)
            updates.append((key, failures + 1, first_at))
        for key, failures, first_at in updates:
            db.execute("insert into login_failures (key, failures, first_at) values (?, ?, ?)"
                       " on conflict (key) do update set failures = excluded.failures, first_at = excluded.first_at",
                       [key, failures, first_at])
    return attempt


def settle(db: sqlite_utils.Database, limits: Limits, attempt: Attempt, right: bool, now: float | None = None) -> None:
    """Record the outcome of a reserved attempt (see the module docstring)."""
    now = time.time() if now is None else now
    with transaction(db):
        for key in attempt.keys:
            row = _row(db, key)
            if row is None:  # reset meanwhile (a new credential)
                continue
            failures, first_at, locked_until, lock_level, locked_at = row
            if right:
                failures = max(0, failures - 1) if key == attempt.client else 0
                db.execute("update login_failures set failures = ? where key = ?", [failures, key])
                continue
            db.execute("update login_failures set wrong_total = wrong_total + 1 where key = ?", [key])
            if failures >= _limits(limits, key)[0] and locked_until <= now:
                lock_s = _next_lock_s(limits, key, lock_level, locked_at, now)
                level = 1 if now - locked_at > limits.forget_s else lock_level + 1
                # a fresh count after the lock; max() so that no lock is ever lowered
                db.execute("update login_failures set failures = 0, first_at = ?, locked_until = case when locked_until > ?"
                           " then locked_until else ? end, lock_level = ?, locked_at = ? where key = ?",
                           [now, now + lock_s, now + lock_s, level, now, key])
        if right:
            forget_before = now - limits.forget_s
            db.execute("delete from login_failures where locked_until < ? and locked_at < ? and first_at < ?",
                       [now, forget_before, forget_before])


def release(db: sqlite_utils.Database, attempt: Attempt) -> None:
    """Give a reserved attempt back: its secret was never checked."""
    with transaction(db):
        for key in attempt.keys:
            db.execute("update login_failures set failures = case when failures > 0 then failures - 1 else 0 end where key = ?", [key])


def clear(db: sqlite_utils.Database, account: str) -> None:
    """Forget an account's attempts and lock: it has a new credential."""
    with transaction(db):
        db.execute("delete from login_failures where key = ?", [account])
