"""Who may see and change what. Every API handler asks one of these.

* a student: only their own space and what is assigned to them;
* a teacher (and head teacher): only the classes they teach, and those classes' students;
* a school administrator: the whole school's people, classes and learning data;
* a parent: only their own children;
* a technician: the device, and no learning data at all.
"""

from __future__ import annotations

import sqlite_utils

from edge_agent.spaces.errors import forbidden
from edge_agent.spaces.people import Person

TEACHING = frozenset({"teacher", "head_teacher"})


def is_admin(viewer: Person) -> bool:
    return "admin" in viewer.roles


def teaches_class(db: sqlite_utils.Database, viewer: Person, class_id: int) -> bool:
    if not viewer.roles & TEACHING:
        return False
    return db.execute("select 1 from class_members where class_id = ? and person_id = ? and role = 'teacher'",
                      [class_id, viewer.id]).fetchone() is not None


def can_manage_class(db: sqlite_utils.Database, viewer: Person, class_id: int) -> bool:
    """Read the class's learning data, assign, grade: its teachers and the administrator."""
    return is_admin(viewer) or teaches_class(db, viewer, class_id)


def teaches_student(db: sqlite_utils.Database, viewer: Person, student_id: int) -> bool:
    if not viewer.roles & TEACHING:
        return False
    return db.execute("select 1 from class_members t join class_members s on s.class_id = t.class_id"
                      " where t.person_id = ? and t.role = 'teacher' and s.person_id = ? and s.role = 'student'",
                      [viewer.id, student_id]).fetchone() is not None


def is_parent_of(db: sqlite_utils.Database, viewer: Person, child_id: int) -> bool:
    return "parent" in viewer.roles and db.execute(
        "select 1 from parent_links where parent_id = ? and child_id = ?", [viewer.id, child_id]).fetchone() is not None


def can_see_student(db: sqlite_utils.Database, viewer: Person, student_id: int) -> bool:
    """The student themself, their teachers, the administrator, their parents."""
    return (viewer.id == student_id or is_admin(viewer) or teaches_student(db, viewer, student_id)
            or is_parent_of(db, viewer, student_id))


def can_manage_student(db: sqlite_utils.Database, viewer: Person, student_id: int) -> bool:
    """Correct a profile, reset a PIN: their teachers and the administrator."""
    return is_admin(viewer) or teaches_student(db, viewer, student_id)


def can_read_answer_keys(viewer: Person | None) -> bool:
    """An exercise's answers: its teachers' and the administrator's, never a student's or a parent's.
    (Any teacher of the school: resources are the school's, not a class's.)"""
    return viewer is not None and not viewer.must_change and (is_admin(viewer) or bool(viewer.roles & TEACHING))


def require(allowed: bool) -> None:
    """Raise ForbiddenError (403) unless ``allowed``."""
    if not allowed:
        raise forbidden()


def require_roles(viewer: Person, *roles: str) -> None:
    require(bool(viewer.roles & set(roles)))
