"""Roster import: the CSV a county registry exports, as Excel writes it, and every
way it can be wrong (the whole file refused, every problem listed, nothing changed)."""

from __future__ import annotations

import io

import pytest

from edge_agent.spaces.people import class_students, find_by_number
from edge_agent.spaces.roster import parse_roster

from fixtures.common import PASSWORD
from fixtures.spaces import CLASS_A, HEADER, SCHOOL_ROSTER, build_world, roster_csv, student_number


pytestmark = pytest.mark.usefixtures("fast_kdf")  # argon2id with tiny costs in every test here


def test_parses_utf8_with_bom_as_excel_writes_it():
    data = "\ufeff".encode() + roster_csv([f"王小明,{student_number(1)},,男,一年级,{CLASS_A},学生,13800000001"])
    rows, problems = parse_roster(data)
    assert problems == []
    assert rows[0].name == "王小明" and rows[0].parent_phone == "13800000001" and rows[0].classes == (CLASS_A,)


def test_parses_gbk_and_treats_full_width_brackets_like_half_width():
    text = "\r\n".join([HEADER, f"王小明,{student_number(1)},,男,一年级,一年级（1）班,学生,"]) + "\r\n"
    rows, problems = parse_roster(text.encode("gbk"))
    assert problems == []
    assert rows[0].classes == (CLASS_A,) and rows[0].name == "王小明"


def test_stray_blank_lines_are_skipped_and_line_numbers_stay_true():
    data = "\n".join([HEADER, ",,,,,,,", f"王小明,{student_number(1)},,男,一年级,{CLASS_A},学生,", "", f",{student_number(2)},,女,一年级,{CLASS_A},学生,", ""]).encode()
    rows, problems = parse_roster(data)
    assert [r.line for r in rows] == [3]
    assert problems == [(5, "姓名为空", "name is empty")]


def test_every_problem_is_listed_by_line():
    data = roster_csv([
        f"王小明,{student_number(1)},,男,一年级,{CLASS_A},学生,",
        f"王小明二,{student_number(1)},,男,一年级,{CLASS_A},学生,",   # duplicate 学籍号
        f",{student_number(3)},,女,一年级,{CLASS_A},学生,",           # empty name
        f"李四,12345,,女,一年级,{CLASS_A},学生,",                     # wrong shape
        "张老师,,t009,女,,三年级(9)班,教师,",                        # class that does not exist
        f"赵五,{student_number(5)},,女,十年级,{CLASS_A},学生,123",     # grade, phone
    ])
    from edge_agent.spaces.roster import class_problems
    rows, problems = parse_roster(data)
    problems += class_problems(rows, [])
    by_line = {}
    for line, _zh, en in problems:
        by_line.setdefault(line, []).append(en)
    assert set(by_line) == {3, 4, 5, 6, 7}
    assert any("repeats line 2" in m for m in by_line[3])
    assert by_line[4] == ["name is empty"]
    assert any("wrong shape" in m for m in by_line[5])
    assert any("does not exist" in m for m in by_line[6])
    assert len(by_line[7]) == 2


def test_missing_columns_are_reported_at_the_header():
    rows, problems = parse_roster("姓名,性别\n王小明,男\n".encode())
    assert rows == [] and problems[0][0] == 1 and "班级" in problems[0][1]


def test_import_creates_people_classes_and_parent_links(appliance, client):
    w = build_world(appliance, client)
    db = appliance.db
    assert {s.name for s in class_students(db, w.ids["class_a"])} == {"王小明", "李小红"}
    parent = find_by_number(db, "13800000001")
    assert parent.roles == {"parent"}
    assert [r[0] for r in db.execute("select child_id from parent_links where parent_id = ?", [parent.id])] == [w.ids["student"]]
    head = db.execute("select head_teacher_id from classes where id = ?", [w.ids["class_a"]]).fetchone()[0]
    assert head == w.ids["head_teacher"]
    assert db.execute("select count(*) from journal where verb = 'admin' and object = 'roster'").fetchone()[0] == 1


def test_a_multi_grade_class_keeps_every_grade(appliance, client):
    r = _admin_import(appliance, client, roster_csv([
        f"甲,{student_number(11)},,男,一年级,复式班(一、三年级),学生,",
        f"乙,{student_number(12)},,女,三年级,复式班(一、三年级),学生,"]))
    assert r.status_code == 200, r.json
    grades = appliance.db.execute("select grades from classes where name = '复式班(一、三年级)'").fetchone()[0]
    assert grades.split(",") == ["一年级", "三年级"]


def test_reimport_moves_a_student_to_another_class(appliance, client):
    w = build_world(appliance, client)
    r = _admin_import(appliance, client, roster_csv([f"王小明,{student_number(1)},,男,二年级,二年级(1)班,学生,"]), w)
    assert r.status_code == 200 and r.json["updated"] == 1
    assert w.ids["student"] in [s.id for s in class_students(appliance.db, w.ids["class_b"])]
    assert w.ids["student"] not in [s.id for s in class_students(appliance.db, w.ids["class_a"])]


def test_bad_roster_through_the_api_changes_nothing(appliance, client):
    w = build_world(appliance, client)
    db = appliance.db
    before = [db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("people", "classes", "class_members", "journal")]
    bad = roster_csv([f"新同学,{student_number(20)},,男,一年级,{CLASS_A},学生,",
                      f"新同学二,{student_number(20)},,男,一年级,{CLASS_A},学生,"]).decode().encode("gbk")
    r = _admin_import(appliance, client, bad, w)
    assert r.status_code == 400
    assert r.json["error"]["code"] == "roster" and "nothing was imported" in r.json["error"]["message_en"]
    assert r.json["error"]["details"]["problems"] == [
        {"line": 3, "message": f"编号 {student_number(20)} 与第 2 行重复", "message_en": f"number {student_number(20)} repeats line 2"}]
    after = [db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("people", "classes", "class_members", "journal")]
    assert after == before


def test_new_staff_get_a_first_password_they_must_change(appliance, client):
    r = _admin_import(appliance, client, roster_csv([f"钱老师,,t050,女,,{CLASS_A},教师,", f"王小明,{student_number(1)},,男,一年级,{CLASS_A},学生,"]))
    assert r.status_code == 200, r.json
    (cred,) = [c for c in r.json["staff_passwords"] if c["number"] == "t050"]
    login = client.post("/api/v1/login/staff", json={"number": "t050", "password": cred["password"]}, headers={"X-Requested-With": "x"})
    assert login.status_code == 200 and login.json["must_change"] is True
    # until the password is changed, nothing else is allowed
    csrf = login.json["csrf_token"]
    assert client.get("/api/v1/classes").status_code == 403
    r = client.post("/api/v1/password", json={"old": cred["password"], "new": "a-better-password"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert client.get("/api/v1/classes").status_code == 200


def test_cli_import_roster_prints_problems_and_exits_non_zero(tmp_path):
    from click.testing import CliRunner

    from edge_agent.cli import main

    bad = tmp_path / "bad.csv"
    bad.write_bytes(roster_csv([f",{student_number(1)},,男,一年级,{CLASS_A},学生,"]))
    good = tmp_path / "good.csv"
    good.write_bytes(roster_csv(SCHOOL_ROSTER))
    data = tmp_path / "data"
    runner = CliRunner()
    r = runner.invoke(main, ["edge", "import-roster", "--data", str(data), str(bad)])
    assert r.exit_code == 1 and "第 2 行" in r.output and "name is empty" in r.output
    r = runner.invoke(main, ["edge", "import-roster", "--data", str(data), str(good)])
    assert r.exit_code == 0, r.output
    assert "t001" in r.output and "新建 created: 8" in r.output


def _admin_import(appliance, client, data: bytes, world=None):
    if world is None:
        from edge_agent.spaces.roster_apply import import_roster
        import_roster(appliance.db, roster_csv(["周校长,,a001,男,,,管理员,"]))
        from edge_agent.spaces.login import set_staff_password
        set_staff_password(appliance.db, find_by_number(appliance.db, "a001").id, PASSWORD, must_change=False)
        from fixtures.spaces import World
        world = World(appliance, client, ids={"admin": find_by_number(appliance.db, "a001").id})
    return world.call("admin", "POST", "/api/v1/roster", data={"file": (io.BytesIO(data), "roster.csv")},
                      content_type="multipart/form-data")
