"""The report's tables as they may be shown and exported: titled, bilingual, suppressed (pure).

Every table a report page shows, exports as xlsx or CSV, or draws as a chart comes
from ``tables`` here, so the privacy rule is applied in one place: in a row that
describes 1 to 4 learners every number about learners (learners, events, hand-ins)
becomes ``"<5"``. Teachers' numbers (teachers, assignments given) are shown as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from hub_sync.hub.reports import MIN_LEARNERS, SUPPRESSED, Period, Reports, Scope

TABLE_NAMES = ("totals", "subject", "grade", "kind", "resources", "weekly", "idle_points")
UNSET = {"subject": "未分类 unclassified", "grade": "未分级 no grade", "kind": "未知类型 unknown kind"}


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str


@dataclass
class Table:
    """A titled table: columns and rows (lists of cell values, already suppressed)."""

    name: str
    zh: str
    en: str
    columns: list[Column]
    rows: Iterable[list[Any]]
    note: str = ""


LEARNERS = Column("learners", "活跃学生", "active learners")
TEACHERS = Column("teachers", "活跃教师", "active teachers")
EVENTS = Column("events", "使用次数", "uses")
ASSIGNED = Column("assigned", "布置作业", "assignments given")
HANDED = Column("handed_in", "提交作业", "work handed in")
LEARNER_KEYS = ("learners", "events", "handed_in")


def suppress(row: dict) -> dict:
    """The row with every learner number hidden when it describes 1-4 learners."""
    if 0 < row.get("learners", 0) < MIN_LEARNERS:
        return {k: (SUPPRESSED if k in LEARNER_KEYS else v) for k, v in row.items()}
    return row


def table(name: str, period: Period, scope: Scope, reports: Reports, limit: int | None = 20) -> Table:
    """One named table of the report for ``period`` and ``scope``."""
    if name == "totals":
        t = suppress(reports.totals(period, scope))
        cols = [LEARNERS, TEACHERS, EVENTS, ASSIGNED, HANDED]
        return Table(name, "总体情况", "Overview", cols, [[t[c.key] for c in cols]])
    if name in ("subject", "grade", "kind"):
        zh, en = {"subject": ("学科", "subject"), "grade": ("年级", "grade"), "kind": ("资源类型", "kind")}[name]
        cols = [Column("value", zh, en), EVENTS, LEARNERS, ASSIGNED, HANDED]
        rows = (suppress(r) | {"value": r["value"] or UNSET[name]} for r in reports.by(period, scope, name))
        return Table(name, f"按{zh}的资源使用", f"Resources used by {en}", cols, [[r[c.key] for c in cols] for r in rows])
    if name == "resources":
        cols = [Column("title", "资源", "resource"), Column("subject", "学科", "subject"), Column("grade", "年级", "grade"),
                Column("kind", "类型", "kind"), EVENTS, LEARNERS, ASSIGNED, HANDED]
        rows = (suppress(r) for r in reports.resources(period, scope, limit))
        zh, en = ("最常用的资源", "Most used resources") if limit else ("全部资源的使用", "Use of every resource")
        return Table(name, zh, en, cols, ([r[c.key] for c in cols] for r in rows))
    if name == "weekly":
        cols = [Column("week", "周", "week"), LEARNERS, TEACHERS, EVENTS, ASSIGNED, HANDED]
        rows = (suppress(r) | {"week": f"{r['first']:%m-%d}~{r['last']:%m-%d}"} for r in reports.weekly(period, scope))
        return Table(name, "每周趋势", "Weekly trend", cols, [[r[c.key] for c in cols] for r in rows])
    if name == "idle_points":
        idle, week = reports.idle_points(period, scope)
        cols = [Column("school_code", "学校代码", "school code"), Column("school_name", "学校", "school"),
                Column("teaching_point", "教学点", "teaching point"), Column("devices", "设备数", "devices")]
        return Table(name, f"{week.first}~{week.last} 没有使用的教学点", f"Teaching points with no use {week.first} to {week.last}",
                     cols, [[r[c.key] for c in cols] for r in idle],
                     note=f"{len(idle)} / {reports.point_count(scope)}")
    raise KeyError(name)
