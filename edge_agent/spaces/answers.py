"""Answering an assigned exercise set: graded at once (``exercises.grade``),
each attempt kept (append-only), the number of attempts limited by the set."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import sqlite_utils

from hub_sync.core.blobstore import BlobStore
from hub_sync.core.sqlite_db import transaction

from edge_agent.library.catalogue import Catalogue
from edge_agent.errors import BadRequestError
from edge_agent.journal import Journal
from edge_agent.spaces.assignments import check_open
from edge_agent.spaces.errors import ConflictError
from edge_agent.spaces.exercises import attempts_allowed, grade, load_exercise
from edge_agent.spaces.people import Person


def exercise_for(db: sqlite_utils.Database, store: BlobStore, assignment: dict[str, Any]) -> dict[str, Any]:
    """The exercise set an assignment points at."""
    if assignment["kind"] != "exercise":
        raise BadRequestError("这项作业不是练习题", "this assignment is not an exercise set")
    resource = Catalogue(db).get(assignment["resource_id"])
    main = next((f for f in resource.files if f.path.endswith(".json")), resource.files[0])
    return load_exercise(store.path_for(main.sha256).read_bytes())


def submit_answers(db: sqlite_utils.Database, store: BlobStore, student: Person, assignment: dict[str, Any],
                   answers: Any) -> dict[str, Any]:
    """Grade and keep one attempt; refuse beyond the allowed attempts or after the due date."""
    check_open(assignment)
    ex = exercise_for(db, store, assignment)
    result = grade(ex, answers)
    allowed = attempts_allowed(ex)
    with transaction(db):
        done = db.execute("select count(*) from answers where assignment_id = ? and person_id = ?",
                          [assignment["id"], student.id]).fetchone()[0]
        if allowed and done >= allowed:
            raise ConflictError(f"已经作答 {done} 次，不能再作答", f"already answered {done} time(s); no attempts left")
        uid = f"ans-{secrets.token_hex(8)}"
        db.execute("insert into answers (uid, assignment_id, person_id, attempt, answers, score, total, created_at)"
                   " values (?, ?, ?, ?, ?, ?, ?, ?)",
                   [uid, assignment["id"], student.id, done + 1, json.dumps(answers, ensure_ascii=False),
                    result["score"], result["total"], time.time()])
        Journal(db).append(f"person:{student.id}", "answered", f"assignment:{assignment['id']}",
                           {"uid": uid, "attempt": done + 1, "score": result["score"], "total": result["total"],
                            "resource_id": assignment["resource_id"]})
    return {"uid": uid, "attempt": done + 1, "attempts_allowed": allowed, **result}


def attempts_of(db: sqlite_utils.Database, assignment_id: int, student_id: int) -> list[dict[str, Any]]:
    keys = ("uid", "attempt", "answers", "score", "total", "created_at")
    out = []
    for row in db.execute("select uid, attempt, answers, score, total, created_at from answers"
                          " where assignment_id = ? and person_id = ? order by attempt", [assignment_id, student_id]):
        a = dict(zip(keys, row))
        a["answers"] = json.loads(a["answers"])
        out.append(a)
    return out
