"""Usage and coverage reports over the roll-ups (never the raw events; all SQL here).

A report is asked for a ``Period`` (first and last day, inclusive, county time) and
a ``Scope`` (the county, one school, or one teaching point of a school). The period
is covered by the fewest roll-up buckets (whole months, then whole weeks, then
days), so a year costs twelve bucket reads per device, not 365.

Distinct learners are exact: each device's learner bitsets are ORed over the
buckets and counted, and the devices' counts added (``hub_sync.hub.rollup``).

Privacy: ``shown`` turns any count of 1 to 4 learners into ``"<5"``, and every
other number in a row that describes fewer than five learners likewise; no query
here returns anything about one person.
"""

from __future__ import annotations

from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

import sqlite_utils

from hub_sync.core.errors import SyncError
from hub_sync.hub.rollup import day_number, register_functions

MIN_LEARNERS = 5
SUPPRESSED = "<5"
MAX_PERIOD_DAYS = 3 * 366


class ReportError(SyncError):
    """A report asked for something it cannot answer (bad dates, unknown scope)."""

    code = "bad_report"
    http_status = 400


class ScopeRefused(SyncError):
    """A report outside the asker's allowed scope (a school head asking for another school)."""

    code = "scope_refused"
    http_status = 403


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @classmethod
    def parse(cls, first: str | None, last: str | None, today: date | None = None) -> "Period":
        """From ``YYYY-MM-DD`` texts; missing ones default to the four weeks ending today."""
        today = today or date.today()
        try:
            end = date.fromisoformat(last) if last else today
            start = date.fromisoformat(first) if first else end - timedelta(days=27)
        except ValueError:
            raise ReportError("日期格式应为 年-月-日，例如 2026-09-01", "dates must be YYYY-MM-DD, e.g. 2026-09-01") from None
        if start > end:
            raise ReportError(f"开始日期 {start} 晚于结束日期 {end}", f"the first day {start} is after the last day {end}")
        if (end - start).days >= MAX_PERIOD_DAYS:
            raise ReportError("时间段最长三年", "a period is at most three years")
        return cls(start, end)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def weeks(self) -> list["Period"]:
        """The period cut at Mondays: one period per (partial) week."""
        out, d = [], self.first
        while d <= self.last:
            end = min(self.last, d + timedelta(days=6 - d.weekday()))
            out.append(Period(d, end))
            d = end + timedelta(days=1)
        return out


@dataclass(frozen=True)
class Scope:
    """``county``, ``school`` (``school``) or ``point`` (``school`` and ``point``)."""

    kind: str = "county"
    school: str = ""
    point: str = ""

    @classmethod
    def parse(cls, school: str | None, point: str | None) -> "Scope":
        school, point = (school or "").strip(), (point or "").strip()
        if point and not school:
            raise ReportError("选择教学点时也要选择学校", "a teaching point needs its school")
        return cls("point", school, point) if point else cls("school", school) if school else cls()

    def sql(self) -> tuple[str, list]:
        """A condition on ``device_id`` selecting this scope's devices."""
        if self.kind == "school":
            return "device_id in (select device_id from devices where school_code = ?)", [self.school]
        if self.kind == "point":
            return ("device_id in (select device_id from fleet_devices where school_code = ? and teaching_point = ?)",
                    [self.school, self.point])
        return "1", []


def cover(period: Period) -> list[tuple[str, int]]:
    """The fewest roll-up buckets (level, first day number) exactly covering ``period``:
    the whole months inside it, then the whole weeks inside what is left, then days."""
    first, last = period.first, period.last
    m = first if first.day == 1 else (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    months = []
    while m.replace(day=monthrange(m.year, m.month)[1]) <= last:
        months.append(m)
        m = m.replace(day=monthrange(m.year, m.month)[1]) + timedelta(days=1)
    if not months:
        return _weeks_and_days(first, last)
    return (_weeks_and_days(first, months[0] - timedelta(days=1)) + [("m", day_number(d)) for d in months]
            + _weeks_and_days(m, last))


def _weeks_and_days(first: date, last: date) -> list[tuple[str, int]]:
    out, d = [], first
    while d <= last:
        if d.weekday() == 0 and d + timedelta(days=6) <= last:
            out.append(("w", day_number(d)))
            d += timedelta(days=7)
        else:
            out.append(("d", day_number(d)))
            d += timedelta(days=1)
    return out


def _buckets_sql(buckets: list[tuple[str, int]]) -> tuple[str, list]:
    parts, params = [], []
    for level in "mwd":
        starts = [s for lv, s in buckets if lv == level]
        if starts:
            parts.append(f"(level = ? and start in ({', '.join('?' * len(starts))}))")
            params += [level, *starts]
    return "(" + " or ".join(parts) + ")", params


def shown(n: int) -> int | str:
    """A learner count as it may be shown: 1-4 become "<5"."""
    return SUPPRESSED if 0 < n < MIN_LEARNERS else n


class Reports:
    """Report queries over the roll-ups of one hub database."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        register_functions(db)

    # -- raw (unsuppressed) numbers -----------------------------------------------
    def _where(self, period: Period, scope: Scope) -> tuple[str, list]:
        b, bp = _buckets_sql(cover(period))
        s, sp = scope.sql()
        return f"{b} and {s}", bp + sp

    def _sets(self, period: Period, scope: Scope, dims: str, params: list) -> dict[str, tuple[int, int]]:
        """dim -> (learners, teachers) over the period and scope, exact."""
        where, wp = self._where(period, scope)
        per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for dim, device, lb, tb in self.db.execute(
                f"select dim, device_id, learners, teachers from rollup_sets where {where} and {dims}", wp + params):
            acc = per[(dim, device)]
            acc[0] |= int.from_bytes(lb, "little")
            acc[1] |= int.from_bytes(tb, "little")
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (dim, _), (lb, tb) in per.items():
            out[dim][0] += lb.bit_count()
            out[dim][1] += tb.bit_count()
        return {k: (v[0], v[1]) for k, v in out.items()}

    def totals(self, period: Period, scope: Scope) -> dict:
        """Active learners and teachers, events, assignments given and handed in (raw counts)."""
        where, wp = self._where(period, scope)
        ev, asg, hand = self.db.execute(
            f"select coalesce(sum(events), 0), coalesce(sum(assigned), 0), coalesce(sum(handed_in), 0)"
            f" from rollup_counts where {where}", wp).fetchone()
        learners, teachers = self._sets(period, scope, "dim = ?", ["*"]).get("*", (0, 0))
        return {"learners": learners, "teachers": teachers, "events": ev, "assigned": asg, "handed_in": hand}

    def by(self, period: Period, scope: Scope, field: str) -> list[dict]:
        """Use by ``subject``, ``grade`` or ``kind``: value, events, learners; most events first."""
        if field not in ("subject", "grade", "kind"):
            raise ReportError(f"未知的分组 {field}", f"unknown grouping {field}")
        where, wp = self._where(period, scope)
        rows = self.db.execute(f"select {field}, sum(events), sum(assigned), sum(handed_in) from rollup_counts"
                               f" where {where} and resource != '' group by {field} order by 2 desc", wp).fetchall()
        p = field[0] + ":"
        sets = self._sets(period, scope, "dim >= ? and dim < ?", [p, field[0] + ";"])
        return [{"value": v, "events": ev, "assigned": asg, "handed_in": hand,
                 "learners": sets.get(p + v, (0, 0))[0]} for v, ev, asg, hand in rows]

    def resources(self, period: Period, scope: Scope, limit: int | None = 20) -> list[dict]:
        """The most used resources (by events): id, title, subject, grade, kind, events, learners."""
        where, wp = self._where(period, scope)
        sql = (f"select resource, max(subject), max(grade), max(kind), sum(events), sum(assigned), sum(handed_in)"
               f" from rollup_counts where {where} and resource != '' group by resource order by 5 desc, 1")
        rows = self.db.execute(sql + (" limit ?" if limit else ""), wp + ([limit] if limit else [])).fetchall()
        learners: dict[str, tuple[int, int]] = {}
        for i in range(0, len(rows), 500):  # SQLite's limit on parameters
            chunk = ["r:" + r[0] for r in rows[i:i + 500]]
            learners |= self._sets(period, scope, f"dim in ({', '.join('?' * len(chunk))})", chunk)
        titles = self._titles([r[0] for r in rows])
        return [{"resource": r, "title": titles.get(r, r), "subject": s, "grade": g, "kind": k, "events": ev,
                 "assigned": asg, "handed_in": hand, "learners": learners.get("r:" + r, (0, 0))[0]}
                for r, s, g, k, ev, asg, hand in rows]

    def weekly(self, period: Period, scope: Scope) -> list[dict]:
        """One row per (partial) week of the period: its first and last day, learners, teachers, events."""
        return [{"first": w.first, "last": w.last, **self.totals(w, scope)} for w in period.weeks()]

    def idle_points(self, period: Period, scope: Scope) -> tuple[list[dict], Period]:
        """Teaching points with no use in the last week of the period (教学点覆盖), and that week."""
        week = period.weeks()[-1]
        where, wp = _buckets_sql(cover(week))
        params: list = []
        sql = ("select f.school_code, coalesce(max(d.school_name), '') as school_name, f.teaching_point,"
               " count(*) as devices, max(d.last_seen_at) as last_seen_at from fleet_devices f"
               " join devices d on d.device_id = f.device_id where f.teaching_point != '' and d.status != 'revoked'")
        if scope.kind != "county":
            sql += " and f.school_code = ?"
            params.append(scope.school)
        if scope.kind == "point":
            sql += " and f.teaching_point = ?"
            params.append(scope.point)
        sql += (f" group by f.school_code, f.teaching_point having not exists (select 1 from rollup_counts c where {where}"
                " and c.device_id in (select device_id from fleet_devices g where g.school_code = f.school_code"
                " and g.teaching_point = f.teaching_point)) order by f.school_code, f.teaching_point")
        return [dict(r) for r in self.db.query(sql, params + wp)], week

    def point_count(self, scope: Scope) -> int:
        """How many teaching points the scope has (for "n of m idle")."""
        sql = "select count(distinct school_code || '/' || teaching_point) from fleet_devices where teaching_point != ''"
        params: list = []
        if scope.kind != "county":
            sql += " and school_code = ?"
            params.append(scope.school)
        if scope.kind == "point":
            sql += " and teaching_point = ?"
            params.append(scope.point)
        return self.db.execute(sql, params).fetchone()[0]

    def schools(self) -> list[tuple[str, str]]:
        """(school code, name) of every enrolled school (for the scope form)."""
        return [(c, n or c) for c, n in self.db.execute(
            "select school_code, max(coalesce(school_name, '')) from devices group by school_code order by school_code")]

    def points(self, school: str = "") -> list[tuple[str, str]]:
        """(school code, teaching point) of every reported teaching point."""
        sql = "select distinct school_code, teaching_point from fleet_devices where teaching_point != ''"
        params = []
        if school:
            sql += " and school_code = ?"
            params.append(school)
        return [tuple(r) for r in self.db.execute(sql + " order by 1, 2", params)]

    def latest_day(self) -> date | None:
        """The last day any usage was rolled up for (to suggest a period with data)."""
        row = self.db.execute("select max(start) from rollup_counts where level = 'd'").fetchone()
        return None if row[0] is None else date(1970, 1, 1) + timedelta(days=row[0])

    def _titles(self, ids: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for rid, title in self.db.execute(
                    f"select id, json_extract(meta, '$.title') from hub_resources where id in ({', '.join('?' * len(chunk))})",
                    chunk):
                out[rid] = title or rid
        return out
