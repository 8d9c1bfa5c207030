"""Conflict rules (pure) and roster changes from the hub: class change, transfer
in with the learner's space, transfer out, graduation, renames on both sides."""

from __future__ import annotations

import pytest

from edge_agent.spaces.merge import merge_fields, merge_progress, union_by_uid
from edge_agent.spaces.people import class_students, find_by_number, get_person
from edge_agent.spaces.roster_apply import apply_roster_change, export_space
from edge_agent.spaces.errors import RosterError

from fixtures.spaces import CLASS_A, CLASS_B, student_number


def test_one_sided_changes_are_kept_from_either_side():
    base = {"name": "王小明", "gender": "男"}
    merged, conflicts = merge_fields(base, {"name": "王晓明", "gender": "男"}, {"name": "王小明", "gender": "女"})
    assert merged == {"name": "王晓明", "gender": "女"} and conflicts == []


def test_identity_conflict_goes_to_the_county_class_conflict_to_the_school():
    base = {"name": "王小明", "classes": ["一年级(1)班"]}
    school = {"name": "王晓明", "classes": ["一年级(2)班"]}
    county = {"name": "王小鸣", "classes": ["一年级(3)班"]}
    merged, conflicts = merge_fields(base, school, county)
    assert merged == {"name": "王小鸣", "classes": ["一年级(2)班"]} and conflicts == ["classes", "name"]


def test_same_change_on_both_sides_is_no_conflict():
    assert merge_fields({"a": 1}, {"a": 2}, {"a": 2}) == ({"a": 2}, [])


def test_student_acts_are_a_union_nothing_dropped():
    ours = [{"uid": "a", "created_at": 1}, {"uid": "b", "created_at": 3}]
    theirs = [{"uid": "b", "created_at": 3}, {"uid": "c", "created_at": 2}]
    assert [r["uid"] for r in union_by_uid(ours, theirs)] == ["a", "c", "b"]


def test_progress_merges_to_the_furthest():
    a = {"state": "completed", "percent": 100.0, "position": 50.0, "updated_at": 1}
    b = {"state": "in_progress", "percent": 30.0, "position": 90.0, "updated_at": 5}
    m = merge_progress(a, b)
    assert m["state"] == "completed" and m["position"] == 90.0 and m["updated_at"] == 5
    assert merge_progress(None, b) == b


def _row(name="王小明", classes=(CLASS_A,), grade="一年级", n=1):
    return {"name": name, "number": student_number(n), "gender": "男", "grade": grade, "classes": list(classes), "role": "学生"}


def test_profile_corrected_on_both_sides_county_wins_the_name(world):
    world.call("teacher", "PATCH", f"/api/v1/people/{world.ids['student']}", {"name": "王晓明"})
    summary = apply_roster_change(world.db, {"kind": "person", "row": _row(name="王小鸣")})
    assert get_person(world.db, world.ids["student"]).name == "王小鸣"
    assert summary["conflicts"] == [{"number": student_number(1), "fields": ["name"]}]


def test_school_correction_survives_a_county_change_of_another_field(world):
    world.call("teacher", "PATCH", f"/api/v1/people/{world.ids['student']}", {"name": "王晓明"})
    apply_roster_change(world.db, {"kind": "person", "row": _row() | {"gender": "女"}})
    p = get_person(world.db, world.ids["student"])
    assert (p.name, p.gender) == ("王晓明", "女")


def test_class_change_from_the_hub_moves_the_student_and_keeps_their_work(world):
    answers_before = world.db.execute("select count(*) from submissions where person_id = ?", [world.ids["student"]]).fetchone()[0]
    apply_roster_change(world.db, {"kind": "person", "row": _row(classes=(CLASS_B,), grade="二年级")})
    assert world.ids["student"] in [s.id for s in class_students(world.db, world.ids["class_b"])]
    assert world.db.execute("select count(*) from submissions where person_id = ?", [world.ids["student"]]).fetchone()[0] == answers_before


def test_class_renamed_on_both_sides_keeps_the_school_name(world):
    world.call("teacher", "PATCH", f"/api/v1/classes/{world.ids['class_a']}", {"name": "一年级(1)班 向日葵"})
    r = apply_roster_change(world.db, {"kind": "class", "name": CLASS_A, "new_name": "一年级一班"})
    assert r["name"] == "一年级(1)班 向日葵" and r["conflicts"] == ["name"]
    # renamed at the county only: taken
    r = apply_roster_change(world.db, {"kind": "class", "name": CLASS_B, "new_name": "二年级一班"})
    assert r["name"] == "二年级一班" and r["conflicts"] == []


def test_transfer_in_brings_the_learners_space(world):
    space = {"history": [{"uid": "ans-old-1", "kind": "answer", "created_at": 1.0, "data": {"title": "旧学校练习", "score": 3}}],
             "progress": [{"resource_id": "vid-1", "state": "in_progress", "percent": 60, "position": 12, "updated_at": 2.0}]}
    change = {"kind": "transfer_in", "row": _row(name="转学生", n=40), "space": space}
    r = apply_roster_change(world.db, change)
    assert r["space"] == {"history_added": 1, "progress_merged": 1}
    pid = find_by_number(world.db, student_number(40)).id
    bundle = export_space(world.db, pid)
    assert [h["uid"] for h in bundle["history"]] == ["ans-old-1"] and bundle["progress"][0]["percent"] == 60
    # the same transfer twice adds nothing and loses nothing
    assert apply_roster_change(world.db, change)["space"]["history_added"] == 0


def test_exported_space_contains_every_act(world):
    world.call("student", "POST", f"/api/v1/assignments/{world.ids['assignment']}/answers", {"answers": {"q1": 1}})
    kinds = sorted(h["kind"] for h in export_space(world.db, world.ids["student"])["history"])
    assert kinds == ["answer", "submission"]


def test_graduation_and_transfer_out_keep_the_record_but_leave_the_class(world):
    apply_roster_change(world.db, {"kind": "graduate", "number": student_number(3)})
    assert get_person(world.db, world.ids["other_student"]).status == "graduated"
    assert class_students(world.db, world.ids["class_b"]) == []
    assert world.db.execute("select count(*) from people where id = ?", [world.ids["other_student"]]).fetchone()[0] == 1


def test_invalid_hub_change_is_refused_and_changes_nothing(world):
    before = world.db.execute("select count(*) from people").fetchone()[0]
    with pytest.raises(RosterError) as err:
        apply_roster_change(world.db, {"kind": "person", "row": _row(name="") | {"number": "bad"}})
    assert len(err.value.details["problems"]) == 2
    assert world.db.execute("select count(*) from people").fetchone()[0] == before
