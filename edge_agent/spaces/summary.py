"""Read models: a class's progress at a glance (teacher) and a student's home.

Both are read on every page view by many clients at once, so each is a handful of
indexed queries (see ``schema.m006_read_model_indexes``) whatever the class's history,
and the per-student work in Python is set look-ups only.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlite_utils

from edge_agent.spaces.assignments import student_assignments
from edge_agent.spaces.messages import unread_count
from edge_agent.spaces.people import Person, class_row, class_students
from edge_agent.spaces.progress import recent_progress

_CLASS_ASSIGNMENTS = "select id from assignments where class_id = :c"
_CLASS_STUDENTS = "select person_id from class_members where class_id = :c and role = 'student'"


def class_progress(db: sqlite_utils.Database, class_id: int) -> dict[str, Any]:
    """Per student and per assignment: done or not, best score, last activity."""
    klass = class_row(db, class_id)
    students = class_students(db, class_id)
    assignments = [dict(zip(("id", "title", "kind", "resource_id", "due_at", "created_at"), r)) for r in db.execute(
        "select id, title, kind, resource_id, due_at, created_at from assignments where class_id = ? order by created_at", [class_id])]
    targets: dict[int, set[int]] = defaultdict(set)
    for aid, pid in db.execute(f"select assignment_id, person_id from assignment_targets where assignment_id in ({_CLASS_ASSIGNMENTS})",
                               {"c": class_id}):
        targets[aid].add(pid)
    done: dict[int, set[int]] = defaultdict(set)        # person -> assignments done (answered, handed in, completed)
    best: dict[int, dict[int, float]] = defaultdict(dict)  # person -> assignment -> best score in percent
    last: dict[int, float] = defaultdict(float)
    for aid, pid, score, at in db.execute(
            "select assignment_id, person_id, max(score * 100.0 / max(total, 1)), max(created_at) from answers"
            f" where assignment_id in ({_CLASS_ASSIGNMENTS}) group by assignment_id, person_id", {"c": class_id}):
        best[pid][aid] = score
        done[pid].add(aid)
        if at > last[pid]:
            last[pid] = at
    for aid, pid, at in db.execute(
            "select assignment_id, person_id, max(created_at) from submissions"
            f" where assignment_id in ({_CLASS_ASSIGNMENTS}) group by assignment_id, person_id", {"c": class_id}):
        done[pid].add(aid)
        if at > last[pid]:
            last[pid] = at
    # a resource assignment is done when the learner completed that resource (whenever)
    for pid, aid in db.execute(
            "select p.person_id, a.id from assignments a join progress p on p.resource_id = a.resource_id"
            f" where a.class_id = :c and a.resource_id != '' and p.state = 'completed' and p.person_id in ({_CLASS_STUDENTS})",
            {"c": class_id}):
        done[pid].add(aid)
    for pid, at in db.execute(f"select m.person_id, (select max(updated_at) from progress p where p.person_id = m.person_id)"
                              f" from ({_CLASS_STUDENTS}) m", {"c": class_id}):
        if at is not None and at > last[pid]:
            last[pid] = at
    order = [a["id"] for a in assignments]
    per_assignment = dict.fromkeys(order, 0)
    rows = []
    for s in students:
        # in assignment order, so that the average is summed as it always was
        mine = [aid for aid in order if not targets[aid] or s.id in targets[aid]] if targets else order
        did, scored = done.get(s.id, ()), best.get(s.id, {})
        n_done = 0
        for aid in mine:
            if aid in did:
                n_done += 1
                per_assignment[aid] += 1
        scores = [scored[aid] for aid in mine if aid in scored] if scored else []
        rows.append({"id": s.id, "name": s.name, "grade": s.grade, "assigned": len(mine), "done": n_done,
                     "average_score_pct": round(sum(scores) / len(scores), 1) if scores else None,
                     "last_active": last.get(s.id) or None})
    return {"class": klass, "students": rows,
            "assignments": [a | {"done": per_assignment[a["id"]],
                                 "assigned": len(targets[a["id"]]) or len(students)} for a in assignments]}


def student_classes(db: sqlite_utils.Database, student_id: int) -> list[dict[str, Any]]:
    """The classes a student is in, by name (as ``people.all_classes`` lists them)."""
    return [{"id": r[0], "name": r[1], "grades": [g for g in r[2].split(",") if g], "head_teacher_id": r[3]}
            for r in db.execute("select id, name, grades, head_teacher_id from classes where id in"
                                " (select class_id from class_members where person_id = ? and role = 'student') order by name",
                                [student_id])]


def student_home(db: sqlite_utils.Database, student: Person) -> dict[str, Any]:
    """What a student sees first: their classes, assignments with status, recent progress, unread messages."""
    return {"person": student.public(),
            "classes": student_classes(db, student.id),
            "assignments": student_assignments(db, student.id),
            "recent": recent_progress(db, student.id),
            "unread_messages": unread_count(db, student)}
