"""Read models: a class's progress at a glance (teacher) and a student's home."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlite_utils

from .assignments import student_assignments
from .messages import unread_count
from .people import Person, class_row, class_students, classes_of, all_classes
from .progress import recent_progress


def class_progress(db: sqlite_utils.Database, class_id: int) -> dict[str, Any]:
    """Per student and per assignment: done or not, best score, last activity."""
    klass = class_row(db, class_id)
    students = class_students(db, class_id)
    assignments = [dict(zip(("id", "title", "kind", "resource_id", "due_at", "created_at"), r)) for r in db.execute(
        "select id, title, kind, resource_id, due_at, created_at from assignments where class_id = ? order by created_at", [class_id])]
    targets: dict[int, set[int]] = defaultdict(set)
    for aid, pid in db.execute("select t.assignment_id, t.person_id from assignment_targets t join assignments a"
                               " on a.id = t.assignment_id where a.class_id = ?", [class_id]):
        targets[aid].add(pid)
    best: dict[tuple[int, int], float] = {}
    last: dict[int, float] = defaultdict(float)
    for aid, pid, score, total, at in db.execute(
            "select x.assignment_id, x.person_id, max(x.score * 100.0 / max(x.total, 1)), max(x.total), max(x.created_at)"
            " from answers x join assignments a on a.id = x.assignment_id where a.class_id = ? group by x.assignment_id, x.person_id",
            [class_id]):
        best[(aid, pid)] = score
        last[pid] = max(last[pid], at)
    handed: dict[tuple[int, int], float | None] = {}
    for aid, pid, score, at in db.execute(
            "select b.assignment_id, b.person_id, max(b.score), max(b.created_at) from submissions b join assignments a"
            " on a.id = b.assignment_id where a.class_id = ? group by b.assignment_id, b.person_id", [class_id]):
        handed[(aid, pid)] = score
        last[pid] = max(last[pid], at)
    ids = [s.id for s in students]
    completed: set[tuple[int, str]] = set()
    if ids:
        # aggregated in SQL: a learner has ~50 progress rows, the loop below only needs these
        marks = ",".join("?" * len(ids))
        for pid, at in db.execute(f"select person_id, max(updated_at) from progress where person_id in ({marks})"
                                  " group by person_id", ids):
            last[pid] = max(last[pid], at)
        completed.update(tuple(r) for r in db.execute(
            f"select person_id, resource_id from progress where person_id in ({marks}) and state = 'completed'"
            " and resource_id in (select resource_id from assignments where class_id = ?)", [*ids, class_id]))
    per_assignment = {a["id"]: 0 for a in assignments}
    rows = []
    for s in students:
        mine = [a for a in assignments if not targets[a["id"]] or s.id in targets[a["id"]]]
        done = 0
        scores = []
        for a in mine:
            key = (a["id"], s.id)
            is_done = key in best or key in handed or (a["resource_id"] and (s.id, a["resource_id"]) in completed)
            if is_done:
                done += 1
                per_assignment[a["id"]] += 1
            if key in best:
                scores.append(best[key])
        rows.append({"id": s.id, "name": s.name, "grade": s.grade, "assigned": len(mine), "done": done,
                     "average_score_pct": round(sum(scores) / len(scores), 1) if scores else None,
                     "last_active": last.get(s.id) or None})
    return {"class": klass, "students": rows,
            "assignments": [a | {"done": per_assignment[a["id"]],
                                 "assigned": len(targets[a["id"]]) or len(students)} for a in assignments]}


def student_home(db: sqlite_utils.Database, student: Person) -> dict[str, Any]:
    """What a student sees first: their classes, assignments with status, recent progress, unread messages."""
    class_ids = classes_of(db, student.id, "student")
    return {"person": student.public(),
            "classes": [c for c in all_classes(db) if c["id"] in class_ids],
            "assignments": student_assignments(db, student.id),
            "recent": recent_progress(db, student.id),
            "unread_messages": unread_count(db, student)}
