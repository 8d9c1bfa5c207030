"""Applying rosters and roster changes from the hub, all through one function.

``import_roster(db, csv_bytes)`` refuses the whole file on any problem (listed by
line) and changes nothing; otherwise ``apply_rows`` creates and updates people,
classes, memberships and parent links in one transaction. A change from the hub
(new student, class change, transfer in or out, graduation, class rename) goes
through ``apply_roster_change`` and the same code; existing records merge by the
rules of ``merge.py`` against the values last agreed with the county.
"""

from __future__ import annotations

import json
import time
from typing import Any

import sqlite_utils

from hub_sync.formats.roster_line import RosterRow, validate_row
from hub_sync.core.sqlite_db import transaction

from edge_agent.journal import Journal
from edge_agent.spaces.auth import hash_secret, new_password
from edge_agent.spaces.errors import RosterError, SpaceError
from edge_agent.spaces.merge import PERSON_COUNTY_FIELDS, merge_fields, merge_progress
from edge_agent.spaces.people import find_by_number
from edge_agent.spaces.roster import class_problems, parse_roster, problems_json


def import_roster(db: sqlite_utils.Database, data: bytes, actor: str = "system") -> dict:
    """Parse and apply a roster CSV; refuse it whole if anything is wrong."""
    rows, problems = parse_roster(data)
    problems += class_problems(rows, [r[0] for r in db.execute("select name from classes")])
    if problems:
        raise RosterError(f"名单有 {len(problems)} 处问题，未导入任何内容。请改正后重新导入",
                          f"the roster has {len(problems)} problem(s); nothing was imported; fix them and import again",
                          problems=problems_json(problems))
    return apply_rows(db, rows, actor)


def _class_id(db: sqlite_utils.Database, name: str, now: float, created: list[str]) -> int:
    row = db.execute("select id from classes where name = ?", [name]).fetchone()
    if row:
        return row[0]
    created.append(name)
    return db.execute("insert into classes (name, grades, synced, created_at, updated_at) values (?, '', ?, ?, ?)",
                      [name, json.dumps({"name": name, "grades": []}, ensure_ascii=False), now, now]).lastrowid


def _current(db: sqlite_utils.Database, person_id: int) -> dict[str, Any]:
    row = db.execute("select name, number, gender, grade from people where id = ?", [person_id]).fetchone()
    classes = sorted(r[0] for r in db.execute(
        "select c.name from class_members m join classes c on c.id = m.class_id where m.person_id = ?", [person_id]))
    return {"name": row[0], "number": row[1], "gender": row[2], "grade": row[3], "classes": classes}


def apply_rows(db: sqlite_utils.Database, rows: list[RosterRow], actor: str = "system") -> dict:
    """Create or update everyone in ``rows`` (already validated) in one transaction."""
    now = time.time()
    new_staff = [r for r in rows if not r.is_student and "parent" not in r.roles and find_by_number(db, r.number) is None]
    passwords = {r.number: new_password() for r in new_staff}
    hashes = {n: hash_secret(p, staff=True) for n, p in passwords.items()}  # slow: outside the write lock
    summary: dict[str, Any] = {"created": 0, "updated": 0, "classes_created": [], "conflicts": [], "staff_passwords": []}
    with transaction(db):
        for row in rows:
            incoming = {"name": row.name, "number": row.number, "gender": row.gender, "grade": row.grade,
                        "classes": sorted(row.classes)}
            existing = find_by_number(db, row.number)
            roles = set(row.roles)
            if existing is None:
                merged = incoming
                person_id = db.execute(
                    "insert into people (number, name, gender, grade, roles, secret_kind, secret_hash, must_change, synced,"
                    " created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row.number, row.name, row.gender, row.grade, ",".join(sorted(roles)),
                     "password" if row.number in hashes else "", hashes.get(row.number, ""), int(row.number in hashes),
                     json.dumps(incoming, ensure_ascii=False), now, now]).lastrowid
                summary["created"] += 1
                if row.number in passwords:
                    summary["staff_passwords"].append({"number": row.number, "name": row.name, "password": passwords[row.number]})
            else:
                person_id = existing.id
                base = json.loads(db.execute("select synced from people where id = ?", [person_id]).fetchone()[0] or "{}")
                merged, conflicts = merge_fields(base, _current(db, person_id), incoming, PERSON_COUNTY_FIELDS)
                if conflicts:
                    summary["conflicts"].append({"number": row.number, "fields": conflicts})
                roles |= existing.roles & {"parent"}
                db.execute("update people set name = ?, gender = ?, grade = ?, roles = ?, status = 'active', synced = ?,"
                           " updated_at = ? where id = ?",
                           [merged["name"], merged["gender"], merged["grade"], ",".join(sorted(roles)),
                            json.dumps(incoming, ensure_ascii=False), now, person_id])
                summary["updated"] += 1
            _set_memberships(db, person_id, row, merged["classes"], now, summary["classes_created"])
            if row.parent_phone:
                _link_parent(db, person_id, row, now)
        Journal(db).append(actor, "admin", "roster", {k: summary[k] for k in ("created", "updated", "classes_created")}
                           | {"rows": len(rows)})
    return summary


def _set_memberships(db: sqlite_utils.Database, person_id: int, row: RosterRow, class_names: list[str], now: float,
                     created: list[str]) -> None:
    member_role = "student" if row.is_student else "teacher"
    ids = [_class_id(db, name, now, created) for name in class_names]
    if "parent" in row.roles and not (set(row.roles) - {"parent"}):
        return
    db.execute("delete from class_members where person_id = ?", [person_id])
    for cid in ids:
        db.execute("insert or ignore into class_members (class_id, person_id, role) values (?, ?, ?)", [cid, person_id, member_role])
        if row.is_student and row.grade:
            grades = {g for g in db.execute("select grades from classes where id = ?", [cid]).fetchone()[0].split(",") if g}
            if row.grade not in grades:
                db.execute("update classes set grades = ? where id = ?", [",".join(sorted(grades | {row.grade})), cid])
        if "head_teacher" in row.roles:
            db.execute("update classes set head_teacher_id = ? where id = ?", [person_id, cid])


def _link_parent(db: sqlite_utils.Database, child_id: int, row: RosterRow, now: float) -> None:
    parent = find_by_number(db, row.parent_phone)
    if parent is None:
        name = row.parent_name or f"{row.name}的家长"
        parent_id = db.execute("insert into people (number, name, roles, created_at, updated_at) values (?, ?, 'parent', ?, ?)",
                               [row.parent_phone, name, now, now]).lastrowid
    else:
        parent_id = parent.id
        if "parent" not in parent.roles:
            db.execute("update people set roles = ? where id = ?", [",".join(sorted(parent.roles | {"parent"})), parent_id])
    db.execute("insert or ignore into parent_links (parent_id, child_id) values (?, ?)", [parent_id, child_id])


# -- changes from the hub -------------------------------------------------------------

def apply_roster_change(db: sqlite_utils.Database, change: dict[str, Any]) -> dict:
    """Apply one roster change sent by the hub (the sync calls this).

    Kinds: ``person`` {row}, ``transfer_in`` {row, space}, ``transfer_out`` {number},
    ``graduate`` {number}, ``class`` {name, new_name?, grades?}. ``row`` has the
    fields of a roster line: name, number, gender, grade, classes (list), role
    (学生/教师/... or a list of role codes), parent_phone, parent_name.
    """
    kind = change.get("kind")
    if kind in ("person", "transfer_in"):
        row, problems = validate_row(change.get("row") or {}, 0)
        if row is not None:
            problems = class_problems([row], [r[0] for r in db.execute("select name from classes")])
        if problems:
            raise RosterError("来自县平台的名单变更无效，未应用", "roster change from the hub is invalid; not applied",
                              problems=problems_json(problems))
        with transaction(db):
            summary = apply_rows(db, [row], actor="hub")
            if kind == "transfer_in":
                summary["space"] = import_space(db, find_by_number(db, row.number).id, change.get("space") or {})
        return summary
    if kind in ("transfer_out", "graduate"):
        status = "transferred_out" if kind == "transfer_out" else "graduated"
        with transaction(db):
            person = find_by_number(db, str(change.get("number", "")))
            if person is None:
                raise SpaceError(f"找不到编号 {change.get('number')}", f"no person numbered {change.get('number')}")
            db.execute("update people set status = ?, card_hash = null, updated_at = ? where id = ?", [status, time.time(), person.id])
            db.execute("delete from sessions where person_id = ?", [person.id])
            Journal(db).append("hub", "admin", f"person:{person.id}", {"action": kind})
        return {"person_id": person.id, "status": status}
    if kind == "class":
        return _apply_class_change(db, change)
    raise SpaceError(f"未知的名单变更类型 {kind!r}", f"unknown roster change kind {kind!r}")


def _apply_class_change(db: sqlite_utils.Database, change: dict[str, Any]) -> dict:
    """A class renamed or regraded at the county; the school wins a real conflict."""
    with transaction(db):
        rows = db.execute("select id, name, grades, synced from classes").fetchall()
        match = next((r for r in rows if json.loads(r[3] or "{}").get("name") == change.get("name")), None)
        if match is None:
            raise SpaceError(f"找不到班级 {change.get('name')}", f"no class {change.get('name')!r}")
        cid, name, grades, synced = match
        base = json.loads(synced or "{}")
        theirs = {"name": change.get("new_name") or base.get("name"), "grades": sorted(change.get("grades", base.get("grades", [])))}
        ours = {"name": name, "grades": sorted(g for g in grades.split(",") if g)}
        merged, conflicts = merge_fields(base, ours, theirs, county_wins=frozenset())
        db.execute("update classes set name = ?, grades = ?, synced = ?, updated_at = ? where id = ?",
                   [merged["name"], ",".join(merged["grades"]), json.dumps(theirs, ensure_ascii=False), time.time(), cid])
        Journal(db).append("hub", "admin", f"class:{cid}", {"action": "class_change", "conflicts": conflicts})
    return {"class_id": cid, "name": merged["name"], "conflicts": conflicts}


# -- a learner's space moving between schools ------------------------------------------

def export_space(db: sqlite_utils.Database, person_id: int) -> dict:
    """A learner's space as a JSON-able bundle (progress, answers, submissions, history)."""
    progress = [dict(zip(("resource_id", "state", "position", "percent", "updated_at"), r)) for r in db.execute(
        "select resource_id, state, position, percent, updated_at from progress where person_id = ?", [person_id])]
    history = [{"uid": r[0], "kind": r[1], "data": json.loads(r[2]), "created_at": r[3]} for r in db.execute(
        "select uid, kind, data, created_at from space_history where person_id = ?", [person_id])]
    for uid, title, answers, score, total, created in db.execute(
            "select a.uid, s.title, a.answers, a.score, a.total, a.created_at from answers a join assignments s on s.id = a.assignment_id"
            " where a.person_id = ?", [person_id]):
        history.append({"uid": uid, "kind": "answer", "created_at": created,
                        "data": {"title": title, "answers": json.loads(answers), "score": score, "total": total}})
    for uid, title, text, files, score, comment, created in db.execute(
            "select b.uid, s.title, b.text, b.files, b.score, b.comment, b.created_at from submissions b"
            " join assignments s on s.id = b.assignment_id where b.person_id = ?", [person_id]):
        history.append({"uid": uid, "kind": "submission", "created_at": created,
                        "data": {"title": title, "text": text, "files": json.loads(files), "score": score, "comment": comment}})
    return {"progress": progress, "history": history}


def import_space(db: sqlite_utils.Database, person_id: int, bundle: dict) -> dict:
    """Bring a transferred-in learner's space: history appended (union by uid), progress merged to the furthest."""
    added = merged = 0
    with transaction(db):
        for item in bundle.get("history", []):
            cur = db.execute("insert or ignore into space_history (uid, person_id, kind, data, created_at) values (?, ?, ?, ?, ?)",
                             [str(item["uid"]), person_id, str(item.get("kind", "")), json.dumps(item.get("data", {}), ensure_ascii=False),
                              float(item.get("created_at", 0))])
            added += cur.rowcount
        for p in bundle.get("progress", []):
            row = db.execute("select state, position, percent, updated_at from progress where person_id = ? and resource_id = ?",
                             [person_id, p["resource_id"]]).fetchone()
            ours = dict(zip(("state", "position", "percent", "updated_at"), row)) if row else None
            best = merge_progress(ours, {k: p.get(k, 0) for k in ("state", "position", "percent", "updated_at")} | {"state": p.get("state", "not_started")})
            db.execute("insert or replace into progress (person_id, resource_id, state, position, percent, updated_at) values (?, ?, ?, ?, ?, ?)",
                       [person_id, p["resource_id"], best["state"], best["position"], best["percent"], best["updated_at"]])
            merged += 1
    return {"history_added": added, "progress_merged": merged}
