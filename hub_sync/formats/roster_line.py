"""One person's line of a roster: the field rules (pure, no I/O).

Shared by the appliance (a CSV roster, a roster change applied at the school,
``edge_agent.spaces.roster``) and the county hub (a roster change checked before
it is queued, ``hub_sync.hub.roster_change``), so both sides judge a line alike.
A problem is ``(line, zh, en)``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

ROLE_NAMES = {
    "学生": ("student",), "教师": ("teacher",), "老师": ("teacher",), "班主任": ("teacher", "head_teacher"),
    "管理员": ("admin",), "学校管理员": ("admin",), "技术员": ("technician",), "家长": ("parent",),
}
GRADES = ("一年级", "二年级", "三年级", "四年级", "五年级", "六年级", "七年级", "八年级", "九年级", "高一", "高二", "高三")
GENDERS = {"男": "男", "女": "女", "M": "男", "F": "女"}
# 全国学籍号: G (or L/J) + 18-character citizen-ID-like body
STUDENT_NUMBER = re.compile(r"^[GLJ]\d{17}[\dX]$")
STAFF_NUMBER = re.compile(r"^[A-Za-z0-9]{3,20}$")
PHONE = re.compile(r"^1\d{10}$")
CLASS_SPLIT = re.compile(r"[、;；,，/]")
MAX_NAME_CHARS = 40

Problem = tuple[int, str, str]


@dataclass(frozen=True)
class RosterRow:
    """One person from a roster, validated and normalised."""

    line: int
    name: str
    number: str
    gender: str
    grade: str
    classes: tuple[str, ...]
    roles: tuple[str, ...]
    parent_phone: str = ""
    parent_name: str = ""

    @property
    def is_student(self) -> bool:
        return "student" in self.roles

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"], d["roles"] = list(self.classes), list(self.roles)
        return d


def norm(text: str) -> str:
    """NFKC (full-width to half-width), trimmed: how names and classes are compared."""
    return unicodedata.normalize("NFKC", text or "").strip()


def validate_row(values: dict[str, Any], line: int = 0) -> tuple[RosterRow | None, list[Problem]]:
    """Check one person's fields (from a CSV line or a hub change); return (row, problems)."""
    problems: list[Problem] = []
    name = norm(values.get("name", ""))
    number = norm(values.get("number", ""))
    role_cell = values.get("role", "")
    roles = tuple(role_cell) if isinstance(role_cell, (list, tuple)) else ROLE_NAMES.get(norm(role_cell))
    if not name:
        problems.append((line, "姓名为空", "name is empty"))
    elif len(name) > MAX_NAME_CHARS:
        problems.append((line, "姓名太长", "name is too long"))
    if roles is None:
        problems.append((line, f"角色“{role_cell}”无效，应为 {'/'.join(ROLE_NAMES)}", f"unknown role {role_cell!r}"))
        roles = ()
    student = "student" in roles
    if student:
        number = number.upper()  # the check character X of a 学籍号
    if student and not STUDENT_NUMBER.match(number):
        problems.append((line, f"学籍号“{number}”格式不对，应为 G 加 18 位", f"student number {number!r} has the wrong shape (G + 18 characters)"))
    elif not student and roles and not STAFF_NUMBER.match(number):
        problems.append((line, f"教师编号“{number}”格式不对，应为 3-20 位字母或数字", f"staff number {number!r} has the wrong shape (3-20 letters or digits)"))
    gender = GENDERS.get(norm(values.get("gender", "")).upper()) or GENDERS.get(norm(values.get("gender", "")))
    if gender is None:
        problems.append((line, "性别应为“男”或“女”", "gender must be 男 or 女"))
    grade = norm(values.get("grade", ""))
    if student and grade not in GRADES:
        problems.append((line, f"年级“{grade}”无效", f"unknown grade {grade!r}"))
    raw_classes = values.get("classes", "")
    if not isinstance(raw_classes, (list, tuple)):
        # a teacher may teach several classes; a student's one class name may itself contain 、 (复式班)
        raw_classes = [raw_classes] if student else CLASS_SPLIT.split(raw_classes)
    classes = tuple(norm(c) for c in raw_classes if norm(c))
    if student and len(classes) != 1:
        problems.append((line, "学生必须属于且只属于一个班级", "a student must be in exactly one class"))
    if any(len(c) > MAX_NAME_CHARS for c in classes):
        problems.append((line, "班级名称太长", "class name is too long"))
    phone = norm(values.get("parent_phone", ""))
    if phone and not PHONE.match(phone):
        problems.append((line, f"家长电话“{phone}”应为 11 位手机号", f"parent phone {phone!r} must be an 11-digit mobile number"))
    if problems:
        return None, problems
    return RosterRow(line, name, number, gender or "", grade, classes, roles, phone, norm(values.get("parent_name", ""))), []
