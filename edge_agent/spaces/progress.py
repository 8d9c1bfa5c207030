"""Progress per student and resource: not started, in progress (position in
seconds or pages, percent), completed. It only moves forward (see
``merge.merge_progress``), so a replay or a late duplicate never loses ground.
"""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.library.catalogue import Catalogue
from edge_agent.errors import BadRequestError
from edge_agent.journal import Journal
from edge_agent.spaces.merge import STATES, merge_progress
from edge_agent.spaces.people import Person

KEYS = ("state", "position", "percent", "updated_at")


def get_progress(db: sqlite_utils.Database, person_id: int, resource_id: str) -> dict[str, Any] | None:
    row = db.execute("select state, position, percent, updated_at from progress where person_id = ? and resource_id = ?",
                     [person_id, resource_id]).fetchone()
    return dict(zip(KEYS, row)) if row else None


def record_progress(db: sqlite_utils.Database, person: Person, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Record where a learner is in a resource; journal viewed/progressed/completed."""
    Catalogue(db).get(resource_id)  # NotFoundError for an unknown resource
    state = body.get("state", "in_progress")
    try:
        percent = float(body.get("percent", 100.0 if state == "completed" else 0.0))
        position = float(body.get("position", 0.0))
    except (TypeError, ValueError) as exc:
        raise BadRequestError("percent 和 position 应为数字", "percent and position must be numbers") from exc
    if state not in STATES or not 0 <= percent <= 100 or position < 0:
        raise BadRequestError("进度无效：state 为 not_started/in_progress/completed，percent 在 0-100 之间",
                              "invalid progress: state not_started/in_progress/completed, percent 0-100")
    now = time.time()
    with transaction(db):
        old = get_progress(db, person.id, resource_id)
        new = merge_progress(old, {"state": state, "position": position, "percent": percent, "updated_at": now})
        db.execute("insert or replace into progress (person_id, resource_id, state, position, percent, updated_at)"
                   " values (?, ?, ?, ?, ?, ?)", [person.id, resource_id, new["state"], new["position"], new["percent"], now])
        journal = Journal(db)
        actor, obj = f"person:{person.id}", f"resource:{resource_id}"
        if old is None:
            journal.append(actor, "viewed", obj, {})
        if new["state"] == "completed" and (old is None or old["state"] != "completed"):
            journal.append(actor, "completed", obj, {"percent": new["percent"]})
        elif new["state"] == "in_progress":
            journal.append(actor, "progressed", obj, {"percent": new["percent"], "position": new["position"]})
    return {"resource_id": resource_id, **new}


def recent_progress(db: sqlite_utils.Database, person_id: int, limit: int = 20) -> list[dict[str, Any]]:
    return [dict(zip(("resource_id",) + KEYS, r)) for r in db.execute(
        "select resource_id, state, position, percent, updated_at from progress where person_id = ? order by updated_at desc limit ?",
        [person_id, limit])]
