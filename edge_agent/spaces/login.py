"""Logging in: staff with a password, students with class -> name -> PIN or
picture password, or with one scan of a printed QR card. Resetting credentials.

Every outcome is journaled (``logged_in``, or ``admin`` for resets); every
failure is counted against the account and the client before it is reported.
"""

from __future__ import annotations

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.journal import Journal
from edge_agent.spaces import const
from edge_agent.spaces.auth import (check_not_locked, hash_secret, new_card_token, new_password, new_pictures, new_pin,
                   picture_secret, record_failure, token_hash, verify_secret)
from edge_agent.spaces.errors import AuthRequiredError, SpaceError
from edge_agent.spaces.people import Person, find_by_number, get_person
from edge_agent.spaces.sessions import create_session


def _bad_login() -> AuthRequiredError:
    return AuthRequiredError("账号或密码不对，请再试一次", "wrong account or password; try again")


def _finish(db: sqlite_utils.Database, person: Person, client: str, method: str) -> tuple[str, str, Person]:
    with transaction(db):  # the session and its journal event together
        db.execute("delete from login_failures where key = ?", [f"acct:{person.id}"])
        token, csrf = create_session(db, person, client)
        Journal(db).append(f"person:{person.id}", "logged_in", f"person:{person.id}", {"method": method})
    return token, csrf, person


def _secret_hash(db: sqlite_utils.Database, person_id: int) -> tuple[str, str]:
    row = db.execute("select secret_kind, secret_hash from people where id = ?", [person_id]).fetchone()
    return (row[0], row[1]) if row else ("", "")


def staff_login(db: sqlite_utils.Database, number: str, password: str, client: str) -> tuple[str, str, Person]:
    """Check a staff member's (or a parent's: number = phone) password; return (token, csrf, person)."""
    person = find_by_number(db, (number or "").strip())
    account = f"acct:{person.id}" if person else None
    check_not_locked(db, [k for k in (account, f"client:{client}") if k])
    if person is None or not (person.is_staff or "parent" in person.roles) or person.status != "active":
        record_failure(db, None, f"client:{client}")
        raise _bad_login()
    kind, stored = _secret_hash(db, person.id)
    if kind != "password" or not verify_secret(stored, password or ""):
        record_failure(db, account, f"client:{client}")
        raise _bad_login()
    return _finish(db, person, client, "password")


def student_login(db: sqlite_utils.Database, class_id: int, person_id: int, client: str,
                  pin: str | None = None, pictures: list[str] | None = None) -> tuple[str, str, Person]:
    """Check a student's PIN or picture password; the student must be in ``class_id``."""
    account = f"acct:{int(person_id)}"
    check_not_locked(db, [account, f"client:{client}"])
    member = db.execute("select 1 from class_members m join people p on p.id = m.person_id where m.class_id = ?"
                        " and m.person_id = ? and m.role = 'student' and p.status = 'active'", [class_id, person_id]).fetchone()
    if not member:
        record_failure(db, None, f"client:{client}")
        raise _bad_login()
    kind, stored = _secret_hash(db, person_id)
    secret = picture_secret(list(pictures)) if pictures else (pin or "")
    if kind not in ("pin", "picture") or not verify_secret(stored, secret):
        record_failure(db, account, f"client:{client}")
        raise _bad_login()
    return _finish(db, get_person(db, person_id), client, kind)


def card_login(db: sqlite_utils.Database, token: str, client: str) -> tuple[str, str, Person]:
    """Log in with the token of a printed QR card."""
    check_not_locked(db, [f"client:{client}"])
    row = db.execute("select id from people where card_hash = ? and status = 'active'", [token_hash(token or "")]).fetchone()
    if row is None:
        record_failure(db, None, f"client:{client}")
        raise AuthRequiredError("这张登录卡无效或已作废，请找老师重新打印", "this login card is invalid or revoked; ask the teacher to print a new one")
    return _finish(db, get_person(db, row[0]), client, "card")


def change_password(db: sqlite_utils.Database, person: Person, old: str, new: str) -> None:
    """A staff member changes their own password (required at first login)."""
    kind, stored = _secret_hash(db, person.id)
    if not verify_secret(stored, old or ""):
        raise AuthRequiredError("原密码不对", "the current password is wrong")
    if len(new or "") < const.MIN_PASSWORD_CHARS or new == old:
        raise SpaceError(f"新密码至少 {const.MIN_PASSWORD_CHARS} 位，且不能与原密码相同",
                         f"the new password needs at least {const.MIN_PASSWORD_CHARS} characters and must differ from the old one")
    hashed = hash_secret(new, staff=True)
    with transaction(db):
        db.execute("update people set secret_kind = 'password', secret_hash = ?, must_change = 0, updated_at = strftime('%s','now')"
                   " where id = ?", [hashed, person.id])
        Journal(db).append(f"person:{person.id}", "admin", f"person:{person.id}", {"action": "password_changed"})


def reset_student_secret(db: sqlite_utils.Database, actor: Person, student: Person, kind: str = "pin") -> dict:
    """Give a student a new PIN (or picture password); return it once, for the teacher to hand over."""
    if kind == "picture":
        pictures = new_pictures()
        secret, shown = picture_secret(pictures), {"pictures": pictures}
    elif kind == "pin":
        secret = new_pin()
        shown = {"pin": secret}
    else:
        raise SpaceError("kind 应为 pin 或 picture", "kind must be pin or picture")
    hashed = hash_secret(secret, staff=False)
    with transaction(db):
        db.execute("update people set secret_kind = ?, secret_hash = ? where id = ?", [kind, hashed, student.id])
        db.execute("delete from login_failures where key = ?", [f"acct:{student.id}"])
        Journal(db).append(f"person:{actor.id}", "admin", f"person:{student.id}", {"action": f"reset_{kind}"})
    return {"person_id": student.id, "name": student.name, **shown}


def set_staff_password(db: sqlite_utils.Database, person_id: int, password: str | None = None, must_change: bool = True) -> str:
    """Set (or generate) a staff password; return it."""
    password = password or new_password()
    hashed = hash_secret(password, staff=True)
    with transaction(db):
        db.execute("update people set secret_kind = 'password', secret_hash = ?, must_change = ? where id = ?",
                   [hashed, int(must_change), person_id])
        db.execute("delete from login_failures where key = ?", [f"acct:{person_id}"])
    return password


def issue_cards(db: sqlite_utils.Database, actor: Person, students: list[Person]) -> dict[int, str]:
    """New QR card tokens for these students (old cards stop working); return id -> token."""
    tokens = {s.id: new_card_token() for s in students}
    with transaction(db):
        for pid, token in tokens.items():
            db.execute("update people set card_hash = ? where id = ?", [token_hash(token), pid])
        Journal(db).append(f"person:{actor.id}", "admin", "cards", {"action": "issue_cards", "count": len(tokens)})
    return tokens
