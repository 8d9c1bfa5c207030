"""Checking a roster change before the hub queues it for a school (pure, no I/O).

The shapes are the ones the appliance applies (``edge_agent.spaces.roster_apply.
apply_roster_change``); the hub may not import the appliance, so the field rules
of a roster line are repeated here, and a test keeps both sides agreeing. What
can only be known at the school (a teacher's class that does not exist there) is
found there and reported back as a failed message.

    {"kind": "person", "row": {"name", "number", "gender", "grade", "classes": [..], "role",
                               "parent_phone"?, "parent_name"?}}
    {"kind": "graduate", "number": "G..."}        {"kind": "transfer_out", "number": "..."}
    {"kind": "class", "name": "三年级1班", "new_name"?: "...", "grades"?: ["三年级"]}

A learner moving between schools goes through ``school-edge hub transfer``, never
through a file (the space has to come from the old school).
"""

from __future__ import annotations

import re
from typing import Any

ROLE_NAMES = {
    "学生": ("student",), "教师": ("teacher",), "老师": ("teacher",), "班主任": ("teacher", "head_teacher"),
    "管理员": ("admin",), "学校管理员": ("admin",), "技术员": ("technician",), "家长": ("parent",),
}
ROLE_CODES = {"student", "teacher", "head_teacher", "admin", "technician", "parent"}
GRADES = ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级", "高一", "高二", "高三")
GENDERS = ("男", "女", "M", "F", "m", "f")
STUDENT_NUMBER = re.compile(r"^[GLJ]\d{17}[\dX]$")
STAFF_NUMBER = re.compile(r"^[A-Za-z0-9]{3,20}$")
PHONE = re.compile(r"^1\d{10}$")
MAX_NAME_CHARS = 40
KINDS = ("person", "graduate", "transfer_out", "class")

Problem = tuple[str, str]  # (中文, English)


def row_problems(row: Any) -> list[Problem]:
    """What is wrong with one person's fields (empty when nothing)."""
    if not isinstance(row, dict):
        return [("缺少人员信息 row", "the change has no 'row' object")]
    out: list[Problem] = []
    name = str(row.get("name", "")).strip()
    if not name or len(name) > MAX_NAME_CHARS:
        out.append(("姓名为空或太长", "name is empty or too long"))
    role = row.get("role", "")
    roles = tuple(role) if isinstance(role, (list, tuple)) else ROLE_NAMES.get(str(role).strip())
    if not roles or not set(roles) <= ROLE_CODES:
        out.append((f"角色“{role}”无效，应为 {'/'.join(ROLE_NAMES)}", f"unknown role {role!r}"))
        roles = ()
    student = "student" in roles
    number = str(row.get("number", "")).strip()
    if student and not STUDENT_NUMBER.match(number.upper()):
        out.append((f"学籍号“{number}”格式不对，应为 G 加 18 位", f"student number {number!r} has the wrong shape (G + 18 characters)"))
    elif not student and not STAFF_NUMBER.match(number):
        out.append((f"教师编号“{number}”格式不对，应为 3-20 位字母或数字", f"staff number {number!r} has the wrong shape"))
    if str(row.get("gender", "")).strip() not in GENDERS:
        out.append(("性别应为“男”或“女”", "gender must be 男 or 女"))
    if student and str(row.get("grade", "")).strip() not in GRADES:
        out.append((f"年级“{row.get('grade', '')}”无效", f"unknown grade {row.get('grade', '')!r}"))
    classes = row.get("classes", [])
    classes = [classes] if isinstance(classes, str) else classes
    if not isinstance(classes, list) or any(not isinstance(c, str) or not c.strip() or len(c) > MAX_NAME_CHARS for c in classes):
        out.append(("班级应为班级名称的列表", "classes must be a list of class names"))
    elif student and len(classes) != 1:
        out.append(("学生必须属于且只属于一个班级", "a student must be in exactly one class"))
    phone = str(row.get("parent_phone", "") or "").strip()
    if phone and not PHONE.match(phone):
        out.append((f"家长电话“{phone}”应为 11 位手机号", f"parent phone {phone!r} must be an 11-digit mobile number"))
    return out


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
