"""The teacher's class progress summary as a read model: the same answer as a plain
recomputation, served from a per-class cache that every write to the class's data
invalidates (triggers), and computed from indexes only."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict

import pytest

from edge_agent.spaces.people import all_classes, class_row, class_students, classes_of
from edge_agent.spaces.schema import migrations as spaces_migrations
from edge_agent.spaces.summary import class_progress, student_classes
from hub_sync.core.migrations import Migrations
from hub_sync.core.sqlite_db import open_db, transaction



def reference_summary(db, class_id: int) -> dict:
    """The summary computed the plain way (one pass per student and assignment), as
    the first version of summary.py did it: the oracle for the optimised one."""
    klass = class_row(db, class_id)
    students = class_students(db, class_id)
    assignments = [dict(zip(("id", "title", "kind", "resource_id", "due_at", "created_at"), r)) for r in db.execute(
        "select id, title, kind, resource_id, due_at, created_at from assignments where class_id = ? order by created_at", [class_id])]
    targets = defaultdict(set)
    for aid, pid in db.execute("select t.assignment_id, t.person_id from assignment_targets t join assignments a"
                               " on a.id = t.assignment_id where a.class_id = ?", [class_id]):
        targets[aid].add(pid)
    best, handed, last = {}, set(), defaultdict(float)
    for aid, pid, score, at in db.execute(
            "select x.assignment_id, x.person_id, max(x.score * 100.0 / max(x.total, 1)), max(x.created_at)"
            " from answers x join assignments a on a.id = x.assignment_id where a.class_id = ? group by 1, 2", [class_id]):
        best[(aid, pid)] = score
        last[pid] = max(last[pid], at)
    for aid, pid, at in db.execute("select b.assignment_id, b.person_id, max(b.created_at) from submissions b join assignments a"
                                   " on a.id = b.assignment_id where a.class_id = ? group by 1, 2", [class_id]):
        handed.add((aid, pid))
        last[pid] = max(last[pid], at)
    completed = set()
    for s in students:
        for rid, state, at in db.execute("select resource_id, state, updated_at from progress where person_id = ?", [s.id]):
            last[s.id] = max(last[s.id], at)
            if state == "completed":
                completed.add((s.id, rid))
    per_assignment = {a["id"]: 0 for a in assignments}
    rows = []
    for s in students:
        mine = [a for a in assignments if not targets[a["id"]] or s.id in targets[a["id"]]]
        done, scores = 0, []
        for a in mine:
            key = (a["id"], s.id)
            if key in best or key in handed or (a["resource_id"] and (s.id, a["resource_id"]) in completed):
                done += 1
                per_assignment[a["id"]] += 1
            if key in best:
                scores.append(best[key])
        rows.append({"id": s.id, "name": s.name, "grade": s.grade, "assigned": len(mine), "done": done,
                     "average_score_pct": round(sum(scores) / len(scores), 1) if scores else None,
                     "last_active": last.get(s.id) or None})
    return {"class": klass, "students": rows,
            "assignments": [a | {"done": per_assignment[a["id"]], "assigned": len(targets[a["id"]]) or len(students)}
                            for a in assignments]}


def random_school(db, seed: int) -> list[int]:
    """Three classes with random members, assignments (some to chosen students, some
    work without a resource), attempts, hand-ins and progress; returns the class ids."""
    rng = random.Random(seed)
    t0 = 1_700_000_000.0
    classes = []
    with transaction(db):
        pid = 0
        for c in range(3):
            cid = db.execute("insert into classes (name, created_at, updated_at) values (?, ?, ?)", [f"班{seed}-{c}", t0, t0]).lastrowid
            classes.append(cid)
            teacher = db.execute("insert into people (number, name, roles, created_at, updated_at) values (?, ?, 'teacher', ?, ?)",
                                 [f"t{seed}-{c}", f"老师{c}", t0, t0]).lastrowid
            db.execute("insert into class_members values (?, ?, 'teacher')", [cid, teacher])
            students = []
            for _ in range(rng.randint(0, 7)):
                pid += 1
                status = "active" if rng.random() < 0.85 else "transferred_out"
                sid = db.execute("insert into people (number, name, grade, roles, status, created_at, updated_at)"
                                 " values (?, ?, '一年级', 'student', ?, ?, ?)",
                                 [f"s{seed}-{pid}", rng.choice("甲乙丙丁") + str(pid % 3), status, t0, t0]).lastrowid
                db.execute("insert into class_members values (?, ?, 'student')", [cid, sid])
                students.append(sid)
            for n in range(rng.randint(0, 8)):
                kind = rng.choice(("exercise", "resource", "work"))
                rid = "" if kind == "work" else f"r{rng.randint(0, 5)}"
                aid = db.execute("insert into assignments (class_id, teacher_id, resource_id, title, kind, due_at, created_at)"
                                 " values (?, ?, ?, ?, ?, ?, ?)", [cid, teacher, rid, f"作业{n}", kind, None,
                                                                   t0 + rng.randint(0, 10) * 60]).lastrowid
                if students and rng.random() < 0.3:
                    for sid in rng.sample(students, rng.randint(1, len(students))):
                        db.execute("insert into assignment_targets values (?, ?)", [aid, sid])
                for sid in students:
                    for attempt in range(rng.choice((0, 0, 1, 2))):
                        db.execute("insert into answers (uid, assignment_id, person_id, attempt, answers, score, total, created_at)"
                                   " values (?, ?, ?, ?, '{}', ?, ?, ?)", [f"a{aid}-{sid}-{attempt}", aid, sid, attempt + 1,
                                                                          rng.randint(0, 3), rng.choice((0, 3, 4)), t0 + rng.random() * 1e5])
                    if rng.random() < 0.2:
                        db.execute("insert into submissions (uid, assignment_id, person_id, created_at) values (?, ?, ?, ?)",
                                   [f"b{aid}-{sid}", aid, sid, t0 + rng.random() * 1e5])
            for sid in students:
                for r in rng.sample(range(6), rng.randint(0, 4)):
                    db.execute("insert into progress (person_id, resource_id, state, updated_at) values (?, ?, ?, ?)",
                               [sid, f"r{r}", rng.choice(("in_progress", "completed")), t0 + rng.random() * 2e5])
    return classes


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_summary_equals_the_plain_recomputation_on_random_classes(appliance, seed):
    db = appliance.db
    classes = random_school(db, seed)
    for cid in classes:
        assert class_progress(db, cid) == reference_summary(db, cid)
    # the student home lists the same classes as before (all classes, filtered)
    for (pid,) in db.execute("select person_id from class_members where role = 'student'").fetchall():
        mine = set(classes_of(db, pid, "student"))
        assert student_classes(db, pid) == [c for c in all_classes(db) if c["id"] in mine]


def _summary(world) -> dict:
    r = world.call("teacher", "GET", f"/api/v1/classes/{world.ids['class_a']}/progress")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.json


def _fresh(world) -> dict:
    return json.loads(json.dumps(class_progress(world.db, world.ids["class_a"])))


def test_cached_summary_equals_a_recomputation_after_every_kind_of_act(world, appliance):
    cls, a = world.ids["class_a"], world.ids["assignment"]
    cache = world.client.application.extensions["class_summaries"]
    other = open_db(appliance.data_dir / "edge.db")  # another writer: a merge, an import, another process
    try:
        def by_sql(sql, params):
            with transaction(other):
                other.execute(sql, params)

        acts = [
            ("answer", True, lambda: world.call("student", "POST", f"/api/v1/assignments/{a}/answers",
                                                {"answers": {"q1": 1, "q2": True}})),
            ("assign to one student", True, lambda: world.call("teacher", "POST", f"/api/v1/classes/{cls}/assignments",
                                                               {"resource_id": "vid-1", "students": [world.ids["student2"]]})),
            ("complete the resource", True, lambda: world.call("student2", "PUT", "/api/v1/progress/vid-1", {"state": "completed"})),
            ("grade", False, lambda: world.call("teacher", "POST", f"/api/v1/submissions/{world.ids['submission']}/grade",
                                                {"score": 90, "comment": "好"})),
            ("rename the student", True, lambda: world.call("teacher", "PATCH", f"/api/v1/people/{world.ids['student']}",
                                                            {"name": "王晓明"})),
            ("rename the class", True, lambda: world.call("admin", "PATCH", f"/api/v1/classes/{cls}", {"name": "一年级(9)班"})),
            ("answer written elsewhere", True, lambda: by_sql(
                "insert into answers (uid, assignment_id, person_id, attempt, answers, score, total, created_at)"
                " values ('elsewhere-1', ?, ?, 1, '{}', 2, 2, 1e10)", [a, world.ids["student2"]])),
            ("student transferred out", True, lambda: by_sql("update people set status = 'transferred_out' where id = ?",
                                                             [world.ids["student"]])),
            ("student leaves the class", True, lambda: by_sql("delete from class_members where person_id = ?",
                                                              [world.ids["student2"]])),
        ]
        before = _summary(world)
        assert _summary(world) == before == _fresh(world) and cache.hits >= 1
        for name, changes, act in acts:
            r = act()
            assert r is None or r.status_code in (200, 201), (name, r.json)
            after = _summary(world)
            assert after == _fresh(world), name
            assert (after != before) is changes, name
            before = after
    finally:
        other.close()


def test_summary_is_served_from_the_cache_until_its_own_class_changes(world):
    cache = world.client.application.extensions["class_summaries"]
    _summary(world)
    hits, misses = cache.hits, cache.misses
    _summary(world)
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    # a learner of another class working does not touch this class's summary
    assert world.call("other_student", "PUT", "/api/v1/progress/vid-1", {"state": "completed"}).status_code == 200
    _summary(world)
    assert (cache.hits, cache.misses) == (hits + 2, misses)
    # one of its own learners does
    assert world.call("student2", "PUT", "/api/v1/progress/vid-1", {"percent": 10}).status_code == 200
    _summary(world)
    assert (cache.hits, cache.misses) == (hits + 2, misses + 1)


def test_summary_of_an_unknown_class_or_by_another_teacher_is_refused(world):
    assert world.call("teacher", "GET", "/api/v1/classes/999/progress").status_code == 404
    assert world.call("other_teacher", "GET", f"/api/v1/classes/{world.ids['class_a']}/progress").status_code == 403
    assert world.call("student", "GET", f"/api/v1/classes/{world.ids['class_a']}/progress").status_code == 403


def test_summary_queries_read_indexes_only(appliance):
    db = appliance.db
    cid = random_school(db, 7)[0]
    db.execute("analyze")
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        class_progress(db, cid)
    finally:
        db.conn.set_trace_callback(None)
    plans = [r[3] for sql in seen for r in db.execute("explain query plan " + sql)]
    assert not [p for p in plans if re.match(r"SCAN (answers|submissions|progress|assignments|class_members)\b", p)]
    assert not [p for p in plans if "GROUP BY" in p]
    for index in ("answers_assignment_cover", "submissions_assignment_cover", "progress_state", "progress_recent"):
        assert any(f"COVERING INDEX {index}" in p for p in plans), index


def test_existing_classes_get_a_version_when_the_migration_runs(tmp_path):
    db = open_db(tmp_path / "old.db")
    try:
        earlier = Migrations("spaces")
        for name, step in spaces_migrations._steps:
            if name == "m007_class_versions":
                break
            earlier(step)
        earlier.apply(db)
        db.execute("insert into classes (name, created_at, updated_at) values ('老班级', 0, 0)")
        assert spaces_migrations.apply(db)[0] == "m007_class_versions"  # then any later steps
        (version,) = db.execute("select version from class_versions").fetchone()
        with transaction(db):
            db.execute("update classes set name = '新名字'")
        assert db.execute("select version from class_versions").fetchone()[0] != version
    finally:
        db.close()
