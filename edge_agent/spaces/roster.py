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
from typing import Iterable

from hub_sync.formats.roster_line import Problem, RosterRow, norm, validate_row  # one line's rules, shared with the hub

HEADERS = {
    "name": ("姓名",), "student_number": ("学籍号", "全国学籍号"), "staff_number": ("教师编号", "工号"),
    "gender": ("性别",), "grade": ("年级",), "classes": ("班级",), "role": ("角色", "身份"),
    "parent_phone": ("家长电话", "家长手机", "家长手机号"), "parent_name": ("家长姓名",),
}
REQUIRED = ("name", "gender", "classes", "role")


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
