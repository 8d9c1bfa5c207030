"""Messages: system notices from the hub (everyone), teacher announcements to a
class (its students, teachers and the students' parents), and teacher-parent
conversations (家校互动, only between a parent and a teacher of their child).
Each person has their own read/unread state."""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.journal import Journal
from edge_agent.spaces import const
from edge_agent.spaces.access import teaches_student
from edge_agent.spaces.errors import forbidden
from edge_agent.spaces.people import Person, children_of

COLS = ("id", "kind", "sender_id", "class_id", "recipient_id", "subject", "body", "created_at")

_VISIBLE = """(m.kind = 'notice'
   or (m.kind = 'announcement' and m.class_id in (
        select class_id from class_members where person_id = :me
        union select c.class_id from class_members c join parent_links l on l.child_id = c.person_id where l.parent_id = :me))
   or (m.kind = 'direct' and (m.recipient_id = :me or m.sender_id = :me)))"""


def _body(body: Any) -> str:
    text = str(body or "").strip()
    if not text:
        raise BadRequestError("消息内容是空的", "the message is empty")
    if len(text) > const.MESSAGE_MAX_CHARS:
        raise BadRequestError("消息太长", f"message longer than {const.MESSAGE_MAX_CHARS} characters")
    return text


def _insert(db: sqlite_utils.Database, actor: str, kind: str, sender_id: int | None, class_id: int | None,
            recipient_id: int | None, subject: str, body: str) -> dict[str, Any]:
    with transaction(db):
        mid = db.execute("insert into messages (kind, sender_id, class_id, recipient_id, subject, body, created_at)"
                         " values (?, ?, ?, ?, ?, ?, ?)", [kind, sender_id, class_id, recipient_id, subject, body, time.time()]).lastrowid
        Journal(db).append(actor, "messaged", f"message:{mid}",
                           {"kind": kind, "class_id": class_id, "recipient_id": recipient_id, "chars": len(body)})
    return get_message(db, mid)


def post_notice(db: sqlite_utils.Database, subject: str, body: str) -> dict[str, Any]:
    """A system notice pushed from the hub (the sync calls this)."""
    return _insert(db, "hub", "notice", None, None, None, str(subject or ""), _body(body))


def announce(db: sqlite_utils.Database, teacher: Person, class_id: int, subject: str, body: str) -> dict[str, Any]:
    return _insert(db, f"person:{teacher.id}", "announcement", teacher.id, class_id, None, str(subject or ""), _body(body))


def may_converse(db: sqlite_utils.Database, a: Person, b: Person) -> bool:
    """A parent and a teacher of one of their children may talk, either way round."""
    def pair(teacher: Person, parent: Person) -> bool:
        return "parent" in parent.roles and any(teaches_student(db, teacher, c) for c in children_of(db, parent.id))
    return pair(a, b) or pair(b, a)


def send_direct(db: sqlite_utils.Database, sender: Person, recipient: Person, body: str) -> dict[str, Any]:
    if not may_converse(db, sender, recipient):
        raise forbidden()
    return _insert(db, f"person:{sender.id}", "direct", sender.id, None, recipient.id, "", _body(body))


def get_message(db: sqlite_utils.Database, message_id: int) -> dict[str, Any]:
    row = db.execute(f"select {', '.join(COLS)} from messages where id = ?", [message_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到消息 {message_id}", f"no message {message_id}")
    return dict(zip(COLS, row))


def can_read(db: sqlite_utils.Database, person: Person, message_id: int) -> bool:
    return db.execute(f"select 1 from messages m where m.id = :id and {_VISIBLE}", {"id": message_id, "me": person.id}).fetchone() is not None


def inbox(db: sqlite_utils.Database, person: Person, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.execute(f"select {', '.join('m.' + c for c in COLS)}, r.read_at from messages m"
                      f" left join message_reads r on r.message_id = m.id and r.person_id = :me"
                      f" where {_VISIBLE} order by m.created_at desc, m.id desc limit :limit", {"me": person.id, "limit": limit})
    return [dict(zip(COLS, r[:-1])) | {"read": r[-1] is not None} for r in rows]


def unread_count(db: sqlite_utils.Database, person: Person) -> int:
    return db.execute(f"select count(*) from messages m where {_VISIBLE} and not exists"
                      " (select 1 from message_reads r where r.message_id = m.id and r.person_id = :me)", {"me": person.id}).fetchone()[0]


def mark_read(db: sqlite_utils.Database, person: Person, message_id: int) -> None:
    get_message(db, message_id)
    if not can_read(db, person, message_id):
        raise forbidden()
    with transaction(db):
        db.execute("insert or ignore into message_reads (message_id, person_id, read_at) values (?, ?, ?)",
                   [message_id, person.id, time.time()])
