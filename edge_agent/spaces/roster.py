"""Rosters: parsing a county registry CSV (pure) and applying it (or one change
from the hub) to the appliance.

``parse_roster(data)`` is pure and reusable (the USB import uses it): it decodes
UTF-8 (with or without the BOM Excel writes) or GBK/GB18030, reads the columns
姓名, 学籍号 or 教师编号, 性别, 年级, 班级, 角色 and optionally 家长电话 and 家长姓名,
and returns ``(rows, problems)``; a problem is ``(line, zh, en)``. Fully blank
lines (Excel writes ``,,,,,``) are skipped. ``import_roster`` refuses the whole
file if there is any problem, so nothing is changed by a bad roster.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any, Iterable

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

HEADERS = {
    "name": ("姓名",), "student_number": ("学籍号", "全国学籍号"), "staff_number": ("教师编号", "工号"),
    "gender": ("性别",), "grade": ("年级",), "classes": ("班级",), "role": ("角色", "身份"),
    "parent_phone": ("家长电话", "家长手机", "家长手机号"), "parent_name": ("家长姓名",),
}
REQUIRED = ("name", "gender", "classes", "role")

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


def decode(data: bytes) -> str:
    """UTF-8 (BOM optional), else GB18030 (a superset of GBK, as Excel on Chinese Windows saves)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def parse_roster(data: bytes) -> tuple[list[RosterRow], list[Problem]]:
    """Parse a roster CSV; return the valid rows and every problem found, by line."""
    try:
        text = decode(data)
    except UnicodeDecodeError:
        return [], [(1, "文件编码无法识别，请另存为 UTF-8 或 GBK 编码的 CSV", "unknown encoding; save the file as UTF-8 or GBK CSV")]
    lines = list(csv.reader(io.StringIO(text, newline="")))
    # csv.reader yields one list per record; line numbers count physical lines
    header_at = next((i for i, r in enumerate(lines) if any(c.strip() for c in r)), None)
    if header_at is None:
        return [], [(1, "名单是空的", "the roster is empty")]
    header = [norm(c) for c in lines[header_at]]
    columns: dict[str, int] = {}
    for key, names in HEADERS.items():
        for i, h in enumerate(header):
            if h in names:
                columns[key] = i
                break
    missing = [HEADERS[k][0] for k in REQUIRED if k not in columns]
    if "student_number" not in columns and "staff_number" not in columns:
        missing.append("学籍号/教师编号")
    if missing:
        return [], [(header_at + 1, f"表头缺少列：{'、'.join(missing)}", f"header lacks column(s): {', '.join(missing)}")]
    rows: list[RosterRow] = []
    problems: list[Problem] = []
    for index in range(header_at + 1, len(lines)):
        cells = lines[index]
        if not any(c.strip() for c in cells):
            continue
        values = {k: norm(cells[i]) if i < len(cells) else "" for k, i in columns.items()}
        values["number"] = values.pop("student_number", "") or values.pop("staff_number", "")
        values.pop("staff_number", None)
        row, row_problems = validate_row(values, index + 1)
        problems.extend(row_problems)
        if row is not None:
            rows.append(row)
    problems.extend(_duplicates(rows))
    return rows, problems


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


def _duplicates(rows: Iterable[RosterRow]) -> list[Problem]:
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        if row.number in seen:
            out.append((row.line, f"编号 {row.number} 与第 {seen[row.number]} 行重复", f"number {row.number} repeats line {seen[row.number]}"))
        else:
            seen[row.number] = row.line
    return out


def class_problems(rows: Iterable[RosterRow], existing_classes: Iterable[str]) -> list[Problem]:
    """Staff rows must name classes that exist or that a student row of this roster creates."""
    rows = list(rows)
    known = set(existing_classes) | {c for r in rows if r.is_student for c in r.classes}
    return [(r.line, f"班级“{c}”不存在", f"class {c!r} does not exist")
            for r in rows if not r.is_student for c in r.classes if c not in known]


def problems_json(problems: list[Problem]) -> list[dict]:
    return [{"line": line, "message": zh, "message_en": en} for line, zh, en in sorted(problems)]
