"""Checking a roster change before the hub queues it for a school (pure, no I/O).

The shapes are the ones the appliance applies (``edge_agent.spaces.roster_apply.
apply_roster_change``); a person's fields are judged by the same rules the school
uses (``hub_sync.formats.roster_line.validate_row``). What can only be known at the school
(a teacher's class that does not exist there) is found there and reported back as
a failed message.

    {"kind": "person", "row": {"name", "number", "gender", "grade", "classes": [..], "role",
                               "parent_phone"?, "parent_name"?}}
    {"kind": "graduate", "number": "G..."}        {"kind": "transfer_out", "number": "..."}
    {"kind": "class", "name": "三年级1班", "new_name"?: "...", "grades"?: ["三年级"]}

A learner moving between schools goes through ``school-edge hub transfer``, never
through a file (the space has to come from the old school).
"""

from __future__ import annotations

from typing import Any

from hub_sync.formats.roster_line import GRADES, ROLE_NAMES, STAFF_NUMBER, STUDENT_NUMBER, validate_row

ROLE_CODES = {code for codes in ROLE_NAMES.values() for code in codes}
KINDS = ("person", "graduate", "transfer_out", "class")

Problem = tuple[str, str]  # (中文, English)


def row_problems(row: Any) -> list[Problem]:
    """What is wrong with one person's fields (empty when nothing)."""
    if not isinstance(row, dict):
        return [("缺少人员信息 row", "the change has no 'row' object")]
    classes, role = row.get("classes", []), row.get("role", "")
    if not isinstance(classes, str) and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return [("班级应为班级名称的列表", "classes must be a list of class names")]
    if isinstance(role, (list, tuple)) and not (role and set(role) <= ROLE_CODES):
        return [(f"角色“{role}”无效，应为 {'/'.join(ROLE_NAMES)}", f"unknown role {role!r}")]
    # a JSON file may hold numbers where the roster has text
    fields = {k: v if isinstance(v, (list, tuple)) else "" if v is None else str(v) for k, v in row.items()}
    return [(zh, en) for _, zh, en in validate_row(fields)[1]]


def change_problems(change: Any) -> list[Problem]:
    """What is wrong with one roster change (empty when it may be queued)."""
    if not isinstance(change, dict):
        return [("名单变更应为 JSON 对象", "a roster change must be a JSON object")]
    kind = change.get("kind")
    if kind not in KINDS:
        return [(f"未知的名单变更类型 {kind!r}，应为 {'/'.join(KINDS)}（转学请用 school-edge hub transfer）",
                 f"unknown roster change kind {kind!r}; use one of {', '.join(KINDS)} (transfers: school-edge hub transfer)")]
    if kind == "person":
        return row_problems(change.get("row"))
    if kind in ("graduate", "transfer_out"):
        number = str(change.get("number", "")).strip()
        if not (STUDENT_NUMBER.match(number) or STAFF_NUMBER.match(number)):
            return [(f"编号“{number}”格式不对", f"number {number!r} has the wrong shape")]
        return []
    name = change.get("name")
    out = [] if isinstance(name, str) and name.strip() else [("缺少班级名称 name", "the class change has no 'name'")]
    if "new_name" in change and not (isinstance(change["new_name"], str) and change["new_name"].strip()):
        out.append(("新班级名称 new_name 无效", "new_name must be a class name"))
    grades = change.get("grades", [])
    if not isinstance(grades, list) or any(g not in GRADES for g in grades):
        out.append(("年级列表 grades 无效", f"grades must be a list of {', '.join(GRADES)}"))
    return out
