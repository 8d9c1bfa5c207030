"""Server-side sessions: a random token in an HttpOnly, SameSite=Lax cookie, its
SHA-256 in the ``sessions`` table, a CSRF token per session.

Students' sessions last one school day; staff sessions expire after 12 h idle
and at most 7 days after login. "Logout everywhere" deletes every session of a
person, and so does a new credential (password, PIN, login cards).
``last_seen`` is written at most once a minute so reads stay reads.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.spaces import const
from edge_agent.spaces.auth import token_hash
from edge_agent.spaces.people import Person, _person, _COLS


@dataclass(frozen=True)
class Session:
    token_hash: str
    person: Person
    csrf: str
    expires_at: float

    @property
    def roles(self) -> frozenset[str]:
        return self.person.roles


def create_session(db: sqlite_utils.Database, person: Person, client: str = "", now: float | None = None) -> tuple[str, str]:
    """Start a session for ``person``; return (cookie token, CSRF token)."""
    now = time.time() if now is None else now
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    if person.is_staff:
        idle_s, expires_at = const.STAFF_IDLE_S, now + const.STAFF_ABSOLUTE_S
    else:
        idle_s, expires_at = const.STUDENT_SESSION_S, now + const.STUDENT_SESSION_S
    with transaction(db):
        db.execute("delete from sessions where expires_at < ?", [now])
        db.execute("insert into sessions (token_hash, person_id, csrf, client, created_at, last_seen, idle_s, expires_at)"
                   " values (?, ?, ?, ?, ?, ?, ?, ?)", [token_hash(token), person.id, csrf, client, now, now, idle_s, expires_at])
    return token, csrf


def lookup_session(db: sqlite_utils.Database, token: str, now: float | None = None) -> Session | None:
    """The live session for a cookie token, or None (unknown, expired, idle too long, person gone)."""
    if not token:
        return None
    now = time.time() if now is None else now
    th = token_hash(token)
    cols = ", ".join("p." + c.strip() for c in _COLS.split(","))
    row = db.execute(f"select s.csrf, s.last_seen, s.idle_s, s.expires_at, {cols} from sessions s"
                     " join people p on p.id = s.person_id where s.token_hash = ?", [th]).fetchone()
    if row is None:
        return None
    csrf, last_seen, idle_s, expires_at = row[:4]
    person = _person(row[4:])
    if now > expires_at or now - last_seen > idle_s or person.status != "active":
        with transaction(db):
            db.execute("delete from sessions where token_hash = ?", [th])
        return None
    if now - last_seen > const.SESSION_TOUCH_S:
        with transaction(db):
            db.execute("update sessions set last_seen = ? where token_hash = ?", [now, th])
    return Session(th, person, csrf, expires_at)


def end_session(db: sqlite_utils.Database, session: Session) -> None:
    with transaction(db):
        db.execute("delete from sessions where token_hash = ?", [session.token_hash])


def end_all_sessions(db: sqlite_utils.Database, person_id: int, keep: str | None = None) -> int:
    """Log a person out everywhere (but the session whose token hash is ``keep``);
    return how many sessions ended."""
    with transaction(db):
        return db.execute("delete from sessions where person_id = ? and token_hash != ?", [person_id, keep or ""]).rowcount
