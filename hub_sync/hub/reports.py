"""Usage and coverage reports over the roll-ups (never the raw events; all SQL here).

A report is asked for a ``Period`` (first and last day, inclusive, county time) and
a ``Scope`` (the whole hub, one school, or one teaching point of a school; at a
province, also one county: its devices are the ones its roster registered,
``devices.county``, see ``hub_sync.hub.counties``). The period
is covered by the fewest roll-up buckets (whole months, then whole weeks, then
days), so a year costs twelve bucket reads per device, not 365.

Distinct learners are exact: each device's learner bitsets are ORed over the
buckets and counted, and the devices' counts added (``hub_sync.hub.rollup``).

Privacy: ``shown`` turns any count of 1 to 4 learners into ``"<5"``, and every
other number in a row that describes fewer than five learners likewise; no query
here returns anything about one person.
"""

from __future__ import annotations

import json
from calendar import monthrange
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from hub_sync.core.errors import SyncError
from hub_sync.hub.database import Database
from hub_sync.hub.rollup import day_number

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
    """``county`` (the whole hub, or at a province one county: ``county``), ``school``
    (``school``) or ``point`` (``school`` and ``point``)."""

    kind: str = "county"
    school: str = ""
    point: str = ""
    county: str = ""

    @classmethod
    def parse(cls, school: str | None, point: str | None, county: str | None = None) -> "Scope":
        school, point, county = (school or "").strip(), (point or "").strip(), (county or "").strip()
        if point and not school:
            raise ReportError("选择教学点时也要选择学校", "a teaching point needs its school")
        return cls("point", school, point) if point else cls("school", school) if school else cls(county=county)

    def sql(self) -> tuple[str, list]:
        """A condition on ``device_id`` selecting this scope's devices."""
        if self.kind == "county" and self.county:
            return "device_id in (select device_id from devices where county = ?)", [self.county]
        if self.kind == "school":
            return "device_id in (select device_id from devices where school_code = ?)", [self.school]
        if self.kind == "point":
            return ("device_id in (select device_id from fleet_devices where school_code = ? and teaching_point = ?)",
                    [self.school, self.point])
        return "1 = 1", []  # a boolean on both engines (PostgreSQL refuses a bare 1)


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


def shown(n: int) -> int | str:
    """A learner count as it may be shown: 1-4 become "<5"."""
    return SUPPRESSED if 0 < n < MIN_LEARNERS else n


class Reports:
    """Report queries over the roll-ups of one hub database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- raw (unsuppressed) numbers -----------------------------------------------
    def _cells(self, period: Period, scope: Scope, dims: str, params: list) -> dict[str, list[int]]:
        """dim -> [events, assigned, handed_in, learners, teachers] over the period and scope, exact.

        One narrow primary-key range per bucket (``dims`` is a condition on ``dim``)."""
        s, sp = scope.sql()
        per: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for level, start in cover(period):
            for dim, device, ev, asg, hand, lb, tb in self.db.execute(
                    f"select dim, device_id, events, assigned, handed_in, learners, teachers from rollup"
                    f" where level = ? and start = ? and {dims} and {s}", [level, start, *params, *sp]):
                acc = per[(dim, device)]
                acc[0] += ev
                acc[1] += asg
                acc[2] += hand
                acc[3] |= int.from_bytes(lb, "little")
                acc[4] |= int.from_bytes(tb, "little")
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        for (dim, _), (ev, asg, hand, lb, tb) in per.items():
            o = out[dim]
            o[0] += ev
            o[1] += asg
            o[2] += hand
            o[3] += lb.bit_count()
            o[4] += tb.bit_count()
        return out

    def totals(self, period: Period, scope: Scope) -> dict:
        """Active learners and teachers, events, assignments given and handed in (raw counts)."""
        ev, asg, hand, learners, teachers = self._cells(period, scope, "dim = ?", ["*"]).get("*", [0, 0, 0, 0, 0])
        return {"learners": learners, "teachers": teachers, "events": ev, "assigned": asg, "handed_in": hand}

    def by(self, period: Period, scope: Scope, field: str) -> list[dict]:
        """Use by ``subject``, ``grade`` or ``kind``: value, events, learners; most events first."""
        if field not in ("subject", "grade", "kind"):
            raise ReportError(f"未知的分组 {field}", f"unknown grouping {field}")
        p = field[0] + ":"
        cells = self._cells(period, scope, "dim >= ? and dim < ?", [p, field[0] + ";"])
        rows = [{"value": dim[2:], "events": ev, "assigned": asg, "handed_in": hand, "learners": lrn}
                for dim, (ev, asg, hand, lrn, _) in cells.items()]
        return sorted(rows, key=lambda r: (-r["events"], r["value"]))

    def resources(self, period: Period, scope: Scope, limit: int | None = 20) -> list[dict]:
        """The most used resources (by events; all of them when ``limit`` is None): id, title,
        subject, grade, kind, events, assignments, hand-ins, learners."""
        s, sp = scope.sql()
        ranked: dict[str, int] = defaultdict(int)
        for level, start in cover(period):  # counts first, summed in SQLite; learners only for the chosen rows
            for dim, ev in self.db.execute(f"select dim, sum(events) from rollup where level = ? and start = ?"
                                           f" and dim >= 'r:' and dim < 'r;' and {s} group by dim", [level, start, *sp]):
                ranked[dim] += ev
        chosen = sorted(ranked, key=lambda d: (-ranked[d], d))[:limit] if limit else sorted(ranked, key=lambda d: (-ranked[d], d))
        cells: dict[str, list[int]] = {}
        for i in range(0, len(chosen), 500):  # SQLite's limit on parameters
            chunk = chosen[i:i + 500]
            cells |= self._cells(period, scope, f"dim in ({', '.join('?' * len(chunk))})", chunk)
        meta = self._meta([d[2:] for d in chosen])
        out = []
        for dim in chosen:
            ev, asg, hand, lrn, _ = cells.get(dim, [0, 0, 0, 0, 0])
            rid = dim[2:]
            m = meta.get(rid, {})
            out.append({"resource": rid, "title": m.get("title") or rid, "subject": m.get("subject") or "",
                        "grade": m.get("grade") or "", "kind": m.get("kind") or "", "events": ev, "assigned": asg,
                        "handed_in": hand, "learners": lrn})
        return out

    def weekly(self, period: Period, scope: Scope) -> list[dict]:
        """One row per (partial) week of the period: its first and last day, learners, teachers, events."""
        return [{"first": w.first, "last": w.last, **self.totals(w, scope)} for w in period.weeks()]

    def idle_points(self, period: Period, scope: Scope) -> tuple[list[dict], Period]:
        """Teaching points with no use in the last week of the period (教学点覆盖), and that week."""
        week = period.weeks()[-1]
        used = set()
        for level, start in cover(week):
            used |= {d for (d,) in self.db.execute("select device_id from rollup where level = ? and start = ? and dim = '*'",
                                                   [level, start])}
        params: list = []
        sql = ("select f.school_code, coalesce(max(d.school_name), '') as school_name, f.teaching_point,"
               f" count(*) as devices, {self.db.aggregate_strings('f.device_id', chr(10))} as ids from fleet_devices f"
               " join devices d on d.device_id = f.device_id where f.teaching_point != '' and d.status != 'revoked'")
        if scope.kind != "county":
            sql += " and f.school_code = ?"
            params.append(scope.school)
        elif scope.county:
            sql += " and d.county = ?"
            params.append(scope.county)
        if scope.kind == "point":
            sql += " and f.teaching_point = ?"
            params.append(scope.point)
        rows = self.db.query(sql + " group by f.school_code, f.teaching_point order by f.school_code, f.teaching_point", params)
        idle = [r for r in rows if not used.intersection(r.pop("ids").split("\n"))]
        return idle, week

    def point_count(self, scope: Scope) -> int:
        """How many teaching points the scope has (for "n of m idle")."""
        sql = "select count(distinct school_code || '/' || teaching_point) from fleet_devices where teaching_point != ''"
        params: list = []
        if scope.kind != "county":
            sql += " and school_code = ?"
            params.append(scope.school)
        elif scope.county:
            sql += " and device_id in (select device_id from devices where county = ?)"
            params.append(scope.county)
        if scope.kind == "point":
            sql += " and teaching_point = ?"
            params.append(scope.point)
        return self.db.execute(sql, params).fetchone()[0]

    def version(self, period: Period, scope: Scope) -> tuple:
        """Changes whenever anything a report of ``period`` and ``scope`` shows may have changed
        (usage stored for one of its days in its school or the county, a device enrolled or
        revoked, the set of teaching points): the key under which a rendered report may be kept."""
        days = [day_number(period.first), day_number(period.last)]
        usage = self.db.execute("select coalesce(max(changed_at), 0) from rollup_changes where scope = ?"
                                " and day between ? and ?", [scope.school, *days]).fetchone()
        points = self.db.execute("select count(*), count(distinct school_code || '/' || teaching_point)"
                                 " from fleet_devices").fetchone()
        devices = self.db.execute("select count(*), coalesce(max(enrolled_at), 0), coalesce(max(revoked_at), 0)"
                                  " from devices").fetchone()
        return (*usage, *points, *devices)

    def schools(self, county: str = "") -> list[tuple[str, str]]:
        """(school code, name) of every enrolled school, or of one county's (for the scope form)."""
        where, params = (" where county = ?", [county]) if county else ("", [])
        return [(c, n or c) for c, n in self.db.execute(
            f"select school_code, max(coalesce(school_name, '')) from devices{where} group by school_code"
            " order by school_code", params)]

    def counties(self) -> list[tuple[str, str]]:
        """(code, name) of the counties relaying to this hub: empty unless the hub is a province."""
        return [(c, n or c) for c, n in self.db.execute("select county, name from relay_counties order by county")]

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
        row = self.db.execute("select max(start) from rollup where level = 'd'").fetchone()
        return None if row[0] is None else date(1970, 1, 1) + timedelta(days=row[0])

    def _meta(self, ids: list[str]) -> dict[str, dict]:
        """The catalogue metadata of resources (title, subject, grade, kind), by id."""
        out: dict[str, dict] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for rid, meta in self.db.execute(
                    f"select id, meta from hub_resources where id in ({', '.join('?' * len(chunk))})", chunk):
                out[rid] = json.loads(meta)
        return out
