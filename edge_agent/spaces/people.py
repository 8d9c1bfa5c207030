"""People of the school: students, teachers, head teachers, administrators,
technicians and parents, and the classes they belong to.

A person is identified on the appliance by an integer ``id`` and nationally by
``number`` (学籍号 for students, 教师编号 for staff, the phone number for a parent).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from edge_agent.errors import NotFoundError

ROLES = ("student", "teacher", "head_teacher", "admin", "technician", "parent")
STAFF_ROLES = frozenset({"teacher", "head_teacher", "admin", "technician"})
ACTIVE = "active"


@dataclass(frozen=True)
class Person:
    id: int
    number: str
    name: str
    gender: str
    grade: str
    roles: frozenset[str]
    status: str
    must_change: bool

    @property
    def is_student(self) -> bool:
        return "student" in self.roles

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & STAFF_ROLES)

    def public(self) -> dict:
        """What other people with access may see (no secrets)."""
        return {"id": self.id, "number": self.number, "name": self.name, "gender": self.gender, "grade": self.grade,
                "roles": sorted(self.roles), "status": self.status}


_COLS = "id, number, name, gender, grade, roles, status, must_change"


def _person(row) -> Person:
    return Person(row[0], row[1], row[2], row[3], row[4], frozenset(r for r in row[5].split(",") if r), row[6], bool(row[7]))


def get_person(db: sqlite_utils.Database, person_id: int) -> Person:
    """The person with this id, or NotFoundError."""
    row = db.execute(f"select {_COLS} from people where id = ?", [person_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到编号为 {person_id} 的人员", f"no person with id {person_id}")
    return _person(row)


def find_by_number(db: sqlite_utils.Database, number: str) -> Person | None:
    row = db.execute(f"select {_COLS} from people where number = ?", [number]).fetchone()
    return _person(row) if row else None


def people(db: sqlite_utils.Database, ids: list[int]) -> list[Person]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return [_person(r) for r in db.execute(f"select {_COLS} from people where id in ({marks}) order by id", ids)]


def class_row(db: sqlite_utils.Database, class_id: int) -> dict:
    """The class with this id as a dict, or NotFoundError."""
    row = db.execute("select id, name, grades, head_teacher_id from classes where id = ?", [class_id]).fetchone()
    if row is None:
        raise NotFoundError(f"找不到编号为 {class_id} 的班级", f"no class with id {class_id}")
    return {"id": row[0], "name": row[1], "grades": [g for g in row[2].split(",") if g], "head_teacher_id": row[3]}


def all_classes(db: sqlite_utils.Database) -> list[dict]:
    return [{"id": r[0], "name": r[1], "grades": [g for g in r[2].split(",") if g], "head_teacher_id": r[3]}
            for r in db.execute("select id, name, grades, head_teacher_id from classes order by name")]


def class_students(db: sqlite_utils.Database, class_id: int, active_only: bool = True) -> list[Person]:
    sql = (f"select {', '.join('p.' + c.strip() for c in _COLS.split(','))} from class_members m join people p on p.id = m.person_id"
           " where m.class_id = ? and m.role = 'student'" + (" and p.status = 'active'" if active_only else "") +
           " order by p.name, p.id")
    return [_person(r) for r in db.execute(sql, [class_id])]


def class_teachers(db: sqlite_utils.Database, class_id: int) -> list[Person]:
    sql = (f"select {', '.join('p.' + c.strip() for c in _COLS.split(','))} from class_members m join people p on p.id = m.person_id"
           " where m.class_id = ? and m.role = 'teacher' order by p.name")
    return [_person(r) for r in db.execute(sql, [class_id])]


def classes_of(db: sqlite_utils.Database, person_id: int, role: str | None = None) -> list[int]:
    """Ids of the classes a person belongs to (as ``role`` if given)."""
    if role:
        rows = db.execute("select class_id from class_members where person_id = ? and role = ?", [person_id, role])
    else:
        rows = db.execute("select class_id from class_members where person_id = ?", [person_id])
    return [r[0] for r in rows]


def children_of(db: sqlite_utils.Database, parent_id: int) -> list[int]:
    return [r[0] for r in db.execute("select child_id from parent_links where parent_id = ?", [parent_id])]


def parents_of(db: sqlite_utils.Database, child_id: int) -> list[int]:
    return [r[0] for r in db.execute("select parent_id from parent_links where child_id = ?", [child_id])]
