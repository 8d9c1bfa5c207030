"""Console sessions: who is logged in to the county console, in the hub's database.

The browser holds a random token (in Flask's signed session cookie); the hub keeps
only its SHA-256, the account, and when it ends (idle and absolute limits). Logging
out, disabling an account or a new password ends sessions here, in every worker.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from hub_sync.hub.database import Database, transaction

__all__ = ["create", "lookup", "end", "end_all", "IDLE_S", "ABSOLUTE_S"]

IDLE_S = 2 * 3600          # a session unused this long ends
ABSOLUTE_S = 12 * 3600     # ... and every session ends after a working day


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(db: Database, account_id: int, client: str, now: float | None = None) -> str:
    """A new session for ``account_id``; returns its token (shown once, to the browser)."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with transaction(db):
        db.execute("insert into console_sessions (token_hash, account_id, client, created_at, last_seen, expires_at)"
                   " values (?, ?, ?, ?, ?, ?)", [_hash(token), account_id, client, now, now, now + ABSOLUTE_S])
        db.execute("delete from console_sessions where expires_at < ? or last_seen < ?", [now, now - IDLE_S])
    return token


def lookup(db: Database, token: str | None, now: float | None = None) -> int | None:
    """The account id of a live session (and mark it used), or None."""
    if not token:
        return None
    now = time.time() if now is None else now
    row = db.execute("select account_id, last_seen, expires_at from console_sessions where token_hash = ?",
                     [_hash(token)]).fetchone()
    if row is None or row[2] < now or row[1] < now - IDLE_S:
        return None
    if now - row[1] > 60:  # write at most once a minute per session: reads stay reads
        with transaction(db):
            db.execute("update console_sessions set last_seen = ? where token_hash = ?", [now, _hash(token)])
    return int(row[0])


def end(db: Database, token: str | None) -> None:
    """Log one session out."""
    if token:
        with transaction(db):
            db.execute("delete from console_sessions where token_hash = ?", [_hash(token)])


def end_all(db: Database, account_id: int) -> int:
    """End every session of an account (disabled, or a new password); returns how many."""
    with transaction(db):
        return db.execute("delete from console_sessions where account_id = ?", [account_id]).rowcount
