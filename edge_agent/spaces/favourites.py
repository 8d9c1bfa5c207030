"""Personal favourites and notes on resources."""

from __future__ import annotations

import time
from typing import Any

import sqlite_utils

from hub_sync.core.sqlite_db import transaction

from edge_agent.library.catalogue import Catalogue
from edge_agent.errors import BadRequestError
from edge_agent.spaces import const


def set_favourite(db: sqlite_utils.Database, person_id: int, resource_id: str, note: str = "") -> dict[str, Any]:
    Catalogue(db).get(resource_id)
    note = str(note or "")
    if len(note) > const.MESSAGE_MAX_CHARS:
        raise BadRequestError("笔记太长", "note too long")
    now = time.time()
    with transaction(db):
        db.execute("insert or replace into favourites (person_id, resource_id, note, updated_at) values (?, ?, ?, ?)",
                   [person_id, resource_id, note, now])
    return {"resource_id": resource_id, "note": note, "updated_at": now}


def remove_favourite(db: sqlite_utils.Database, person_id: int, resource_id: str) -> None:
    with transaction(db):
        db.execute("delete from favourites where person_id = ? and resource_id = ?", [person_id, resource_id])


def favourites(db: sqlite_utils.Database, person_id: int) -> list[dict[str, Any]]:
    return [{"resource_id": r[0], "title": r[1], "note": r[2], "updated_at": r[3]} for r in db.execute(
        "select f.resource_id, coalesce(r.title, ''), f.note, f.updated_at from favourites f left join resources r"
        " on r.id = f.resource_id where f.person_id = ? order by f.updated_at desc", [person_id])]
