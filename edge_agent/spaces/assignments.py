"""Assignments: a resource, an exercise set or a piece of work given to a class or
to chosen students of it, with an optional due date."""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.library.catalogue import Catalogue
from edge_agent.errors import BadRequestError, NotFoundError
from edge_agent.journal import Journal
from edge_agent.spaces.access import can_manage_class, is_parent_of
from edge_agent.spaces.errors import ConflictError
from edge_agent.spaces.people import Person

COLS = ("id", "class_id", "teacher_id", "resource_id", "title", "kind", "due_at", "allow_late", "created_at")


def get_assignment(db: sqlite_utils.Database, assignment_id: int) -> dict[str, Any]:
    row = db.execute(f"select {', '.join(COLS)} from assignments where id = ?", [assignment_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到作业 {assignment_id}", f"no assignment {assignment_id}")
    a = dict(zip(COLS, row))
    a["allow_late"] = bool(a["allow_late"])
    a["students"] = [r[0] for r in db.execute("select person_id from assignment_targets where assignment_id = ?", [assignment_id])]
    return a


def is_assigned_to(db: sqlite_utils.Database, assignment: dict[str, Any], student_id: int) -> bool:
    """Assigned to this student: in the class and (whole class, or among the chosen)."""
    in_class = db.execute("select 1 from class_members where class_id = ? and person_id = ? and role = 'student'",
                          [assignment["class_id"], student_id]).fetchone()
    return bool(in_class) and (not assignment["students"] or student_id in assignment["students"])


def can_see_assignment(db: sqlite_utils.Database, viewer: Person, assignment: dict[str, Any]) -> bool:
    if can_manage_class(db, viewer, assignment["class_id"]):
        return True
    if viewer.is_student and is_assigned_to(db, assignment, viewer.id):
        return True
    if "parent" in viewer.roles:
        children = [r[0] for r in db.execute("select child_id from parent_links where parent_id = ?", [viewer.id])]
        return any(is_assigned_to(db, assignment, c) and is_parent_of(db, viewer, c) for c in children)
    return False


def create_assignment(db: sqlite_utils.Database, teacher: Person, class_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Assign a resource (or an exercise set, or work to hand in) to a class or chosen students."""
    resource_id = str(body.get("resource_id") or "")
    title = str(body.get("title") or "").strip()
    kind = "work"
    if resource_id:
        resource = Catalogue(db).get(resource_id)
        kind = "exercise" if resource.kind == "exercise" else "resource"
        title = title or resource.title
    if not title:
        raise BadRequestError("请填写作业标题或选择资源", "give a title or choose a resource")
    due_at = body.get("due_at")
    if due_at is not None and not isinstance(due_at, (int, float)):
        raise BadRequestError("due_at 应为时间戳（秒）", "due_at must be a timestamp in seconds")
    students = body.get("students") or []
    if not isinstance(students, list) or not all(isinstance(s, int) for s in students):
        raise BadRequestError("students 应为学生编号列表", "students must be a list of student ids")
    members = {r[0] for r in db.execute("select person_id from class_members where class_id = ? and role = 'student'", [class_id])}
    outside = sorted(set(students) - members)
    if outside:
        raise BadRequestError(f"这些学生不在该班：{outside}", f"these students are not in the class: {outside}")
    now = time.time()
    with transaction(db):
        aid = db.execute("insert into assignments (class_id, teacher_id, resource_id, title, kind, due_at, allow_late, created_at)"
                         " values (?, ?, ?, ?, ?, ?, ?, ?)",
                         [class_id, teacher.id, resource_id, title, kind, due_at, int(bool(body.get("allow_late"))), now]).lastrowid
        for sid in sorted(set(students)):
            db.execute("insert into assignment_targets (assignment_id, person_id) values (?, ?)", [aid, sid])
        Journal(db).append(f"person:{teacher.id}", "assigned", f"assignment:{aid}",
                           {"class_id": class_id, "resource_id": resource_id, "kind": kind, "students": sorted(set(students))})
    return get_assignment(db, aid)


def check_open(assignment: dict[str, Any], now: float | None = None) -> None:
    """Refuse work handed in after a closed due date."""
    now = time.time() if now is None else now
    if assignment["due_at"] is not None and now > assignment["due_at"] and not assignment["allow_late"]:
        raise ConflictError("已过截止时间，不能再提交。请联系老师", "the due date has passed; it can no longer be handed in; ask the teacher")


def student_assignments(db: sqlite_utils.Database, student_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """What is assigned to a student, newest first, with whether they did it."""
    rows = db.execute(
        """select a.id, a.title, a.kind, a.resource_id, a.due_at, a.created_at,
                  (select count(*) from answers x where x.assignment_id = a.id and x.person_id = :sid),
                  (select max(score) from answers x where x.assignment_id = a.id and x.person_id = :sid),
                  (select count(*) from submissions b where b.assignment_id = a.id and b.person_id = :sid),
                  (select state from progress p where p.person_id = :sid and p.resource_id = a.resource_id)
           from class_members m join assignments a on a.class_id = m.class_id
           where m.person_id = :sid and m.role = 'student'
             and (not exists (select 1 from assignment_targets t where t.assignment_id = a.id)
                  or exists (select 1 from assignment_targets t where t.assignment_id = a.id and t.person_id = :sid))
           order by a.created_at desc limit :limit""", {"sid": student_id, "limit": limit})
    keys = ("id", "title", "kind", "resource_id", "due_at", "created_at", "attempts", "best_score", "submissions", "progress")
    out = []
    for row in rows:
        a = dict(zip(keys, row))
        a["progress"] = a["progress"] or "not_started"
        a["done"] = bool(a["attempts"] or a["submissions"] or a["progress"] == "completed")
        out.append(a)
    return out


def class_assignments(db: sqlite_utils.Database, class_id: int) -> list[dict[str, Any]]:
    return [dict(zip(COLS, r)) for r in db.execute(
        f"select {', '.join(COLS)} from assignments where class_id = ? order by created_at desc", [class_id])]
