"""Logging in: staff with a password, students with class -> name -> PIN or
picture password, or with one scan of a printed QR card. Resetting credentials.

Every check of a secret goes through the throttle (``throttle.py``): the attempt
is counted on the account and the client address, in one transaction, before
the secret is checked, and a locked account refuses even the right secret. An
unknown account (or one that may not log in this way) is checked against a
dummy secret of the same kind, so it answers as late as a known one, and is
throttled by what was typed (``number:<n>``) so that it locks like a known one.

Every success is journaled (``logged_in``), every credential change too
(``admin``); a new credential ends that person's other sessions.
"""

from __future__ import annotations

from typing import Callable

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.journal import Journal
from edge_agent.spaces import const, throttle
from edge_agent.spaces.auth import (dummy_check, hash_pin, hash_secret, needs_rehash, new_card_token, new_password,
                                    new_pictures, new_pin, picture_secret, token_hash, verify_secret)
from edge_agent.spaces.errors import AuthRequiredError, SpaceError
from edge_agent.spaces.login_key import login_key
from edge_agent.spaces.people import Person, find_by_number, get_person
from edge_agent.spaces.sessions import create_session, end_all_sessions

MAX_NUMBER_CHARS = 64


def _bad_login() -> AuthRequiredError:
    return AuthRequiredError("账号或密码不对，请再试一次", "wrong account or password; try again")


def _throttled(db: sqlite_utils.Database, account: str | None, client: str, check: Callable[[], bool]) -> throttle.Attempt | None:
    """Reserve an attempt and run ``check`` (True: the secret is right).

    A wrong secret is recorded here and gives None; a right one gives the attempt,
    for the caller to settle in the same transaction as what the login changes.
    """
    attempt = throttle.reserve(db, account, f"client:{client}")
    try:
        right = check()
    except BaseException:  # not checked (no argon2 turn free, or a crash): give the attempt back
        throttle.release(db, attempt)
        raise
    if not right:
        throttle.settle(db, attempt, right=False)
        return None
    return attempt


def _finish(db: sqlite_utils.Database, attempt: throttle.Attempt, person: Person, client: str,
            method: str) -> tuple[str, str, Person]:
    with transaction(db):  # the attempt's outcome, the session and its journal event together
        throttle.settle(db, attempt, right=True)
        token, csrf = create_session(db, person, client)
        Journal(db).append(f"person:{person.id}", "logged_in", f"person:{person.id}", {"method": method})
    return token, csrf, person


def _secret_hash(db: sqlite_utils.Database, person_id: int) -> tuple[str, str]:
    row = db.execute("select secret_kind, secret_hash from people where id = ?", [person_id]).fetchone()
    return (row[0], row[1]) if row else ("", "")


def staff_login(db: sqlite_utils.Database, number: str, password: str, client: str) -> tuple[str, str, Person]:
    """Check a staff member's (or a parent's: number = phone) password; return (token, csrf, person)."""
    number = (number or "").strip()[:MAX_NUMBER_CHARS]
    person = find_by_number(db, number) if number else None
    allowed = person is not None and (person.is_staff or "parent" in person.roles) and person.status == "active"

    def check() -> bool:
        kind, stored = _secret_hash(db, person.id) if allowed else ("", "")
        if kind != "password":
            return dummy_check(password or "", staff=True)
        return verify_secret(stored, password or "")

    attempt = _throttled(db, f"acct:{person.id}" if person else f"number:{number}", client, check)
    if attempt is None:
        raise _bad_login()
    return _finish(db, attempt, person, client, "password")


def student_login(db: sqlite_utils.Database, class_id: int, person_id: int, client: str,
                  pin: str | None = None, pictures: list[str] | None = None) -> tuple[str, str, Person]:
    """Check a student's PIN or picture password; the student must be in ``class_id``.

    A PIN still stored as an argon2id hash is replaced by a keyed hash once it
    proves right (see ``auth.py``).
    """
    key = login_key(db)
    secret = picture_secret(list(pictures)) if pictures else (pin or "")
    member = db.execute("select 1 from class_members m join people p on p.id = m.person_id where m.class_id = ?"
                        " and m.person_id = ? and m.role = 'student' and p.status = 'active'", [class_id, person_id]).fetchone()
    kind, stored = _secret_hash(db, person_id) if member else ("", "")

    def check() -> bool:
        if kind not in ("pin", "picture"):
            return dummy_check(secret, staff=False, key=key)
        return verify_secret(stored, secret, key)

    attempt = _throttled(db, f"acct:{int(person_id)}", client, check)
    if attempt is None:
        raise _bad_login()
    if needs_rehash(kind, stored):
        with transaction(db):  # only if no teacher gave a new PIN meanwhile
            db.execute("update people set secret_hash = ? where id = ? and secret_hash = ?",
                       [hash_pin(secret, key), person_id, stored])
    return _finish(db, attempt, get_person(db, person_id), client, kind)


def card_login(db: sqlite_utils.Database, token: str, client: str) -> tuple[str, str, Person]:
    """Log in with the token of a printed QR card (throttled by client address: a
    card token has 128 random bits, there is no account to guess against)."""
    row = db.execute("select id from people where card_hash = ? and status = 'active'", [token_hash(token or "")]).fetchone()
    attempt = _throttled(db, None, client, lambda: row is not None)
    if attempt is None:
        raise AuthRequiredError("这张登录卡无效或已作废，请找老师重新打印", "this login card is invalid or revoked; ask the teacher to print a new one")
    return _finish(db, attempt, get_person(db, row[0]), client, "card")


def change_password(db: sqlite_utils.Database, person: Person, old: str, new: str, client: str = "",
                    keep_session: str | None = None) -> int:
    """A staff member changes their own password (required at first login).

    The old password is checked like a login (throttled); every other session of
    the person ends (``keep_session``: the token hash of the one making the
    change). Returns how many sessions ended.
    """
    if len(new or "") < const.MIN_PASSWORD_CHARS or new == old:
        raise SpaceError(f"新密码至少 {const.MIN_PASSWORD_CHARS} 位，且不能与原密码相同",
                         f"the new password needs at least {const.MIN_PASSWORD_CHARS} characters and must differ from the old one")
    kind, stored = _secret_hash(db, person.id)
    attempt = _throttled(db, f"acct:{person.id}", client, lambda: kind == "password" and verify_secret(stored, old or ""))
    if attempt is None:
        raise AuthRequiredError("原密码不对", "the current password is wrong")
    try:
        hashed = hash_secret(new, staff=True)
    except BaseException:
        throttle.settle(db, attempt, right=True)
        raise
    with transaction(db):
        throttle.settle(db, attempt, right=True)
        db.execute("update people set secret_kind = 'password', secret_hash = ?, must_change = 0, updated_at = strftime('%s','now')"
                   " where id = ?", [hashed, person.id])
        ended = end_all_sessions(db, person.id, keep=keep_session)
        Journal(db).append(f"person:{person.id}", "admin", f"person:{person.id}",
                           {"action": "password_changed", "sessions_ended": ended})
    return ended


def reset_student_secret(db: sqlite_utils.Database, actor: Person, student: Person, kind: str = "pin") -> dict:
    """Give a student a new PIN (or picture password); return it once, for the teacher to hand over.

    The student's lock (if any) and every session of theirs end with the old secret.
    """
    if kind == "picture":
        pictures = new_pictures()
        secret, shown = picture_secret(pictures), {"pictures": pictures}
    elif kind == "pin":
        secret = new_pin()
        shown = {"pin": secret}
    else:
        raise SpaceError("kind 应为 pin 或 picture", "kind must be pin or picture")
    hashed = hash_pin(secret, login_key(db))
    with transaction(db):
        db.execute("update people set secret_kind = ?, secret_hash = ? where id = ?", [kind, hashed, student.id])
        throttle.clear(db, f"acct:{student.id}")
        ended = end_all_sessions(db, student.id)
        Journal(db).append(f"person:{actor.id}", "admin", f"person:{student.id}", {"action": f"reset_{kind}", "sessions_ended": ended})
    return {"person_id": student.id, "name": student.name, **shown}


def set_staff_password(db: sqlite_utils.Database, person_id: int, password: str | None = None, must_change: bool = True,
                       actor: Person | None = None) -> str:
    """Set (or generate) a staff password; return it. The person's lock and sessions
    end; the change is journaled as ``actor``'s if one is given.

    The argon2 hash is made before the transaction: never hold SQLite's write lock
    while waiting for an argon2 turn (the logins holding the turns need the lock).
    """
    password = password or new_password()
    hashed = hash_secret(password, staff=True)
    with transaction(db):
        db.execute("update people set secret_kind = 'password', secret_hash = ?, must_change = ? where id = ?",
                   [hashed, int(must_change), person_id])
        throttle.clear(db, f"acct:{person_id}")
        ended = end_all_sessions(db, person_id)
        if actor is not None:
            Journal(db).append(f"person:{actor.id}", "admin", f"person:{person_id}",
                               {"action": "reset_password", "sessions_ended": ended})
    return password


def issue_cards(db: sqlite_utils.Database, actor: Person, students: list[Person]) -> dict[int, str]:
    """New QR card tokens for these students (old cards stop working, and so do the
    sessions of these students: one may have come from a lost card); return id -> token."""
    tokens = {s.id: new_card_token() for s in students}
    with transaction(db):
        ended = 0
        for pid, token in tokens.items():
            db.execute("update people set card_hash = ? where id = ?", [token_hash(token), pid])
            ended += end_all_sessions(db, pid)
        Journal(db).append(f"person:{actor.id}", "admin", "cards", {"action": "issue_cards", "count": len(tokens),
                                                                    "sessions_ended": ended})
    return tokens
