"""The appliance's login throttle: ``hub_sync.core.login_throttle``'s rules with the
learning spaces' limits (``const``) and their ``LockedError``.

The rules (reserve in ``BEGIN IMMEDIATE`` before the secret is checked, per account
and per client address, locks that grow) are in ``hub_sync.core.login_throttle``,
shared with the county hub's console; see ``docs/login-security.md``. The limits are
read from ``const`` at each call, so tests can patch them.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import sqlite_utils

from hub_sync.core import login_throttle as rules
from hub_sync.core.login_throttle import Attempt, release

from edge_agent.spaces import const
from edge_agent.spaces.errors import LockedError

__all__ = ["Attempt", "reserve", "settle", "release", "clear", "limits"]


def limits() -> rules.Limits:
    """The learning spaces' budgets and lock times, as ``const`` says now."""
    return rules.Limits(const.ACCOUNT_MAX_FAILURES, const.ACCOUNT_WINDOW_S, const.ACCOUNT_LOCK_S,
                        const.CLIENT_MAX_FAILURES, const.CLIENT_WINDOW_S, const.CLIENT_LOCK_S,
                        const.LOCK_GROWTH, const.LOCK_MAX_S, const.LOCK_FORGET_S)


@contextlib.contextmanager
def _as_space_error() -> Iterator[None]:
    try:
        yield
    except rules.LoginLockedError as exc:  # the spaces' API answers with its own error class
        raise LockedError(exc.zh, exc.en, **exc.details) from None


def reserve(db: sqlite_utils.Database, account: str | None, client: str, now: float | None = None) -> Attempt:
    """Count one attempt on ``account`` and ``client`` before its secret is checked,
    or raise ``LockedError`` (nothing counted) if either is locked or spent."""
    with _as_space_error():
        return rules.reserve(db, limits(), account, client, now)


def settle(db: sqlite_utils.Database, attempt: Attempt, right: bool, now: float | None = None) -> None:
    """Record the outcome of a reserved attempt."""
    rules.settle(db, limits(), attempt, right, now)


def clear(db: sqlite_utils.Database, account: str) -> None:
    """Forget an account's attempts and lock: it has a new credential."""
    rules.clear(db, account)
