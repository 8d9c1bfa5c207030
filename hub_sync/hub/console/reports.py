"""The usage and coverage report pages (资源应用情况, 教学点覆盖) over the roll-ups.

    GET /console/reports?first=&last=&county=&school=&point=  the report page: overview,
                     use by subject / grade / kind, most used resources, weekly trend,
                     teaching points with no use in the period's last week; charts as
                     inline SVG (no script)
    GET /console/reports/<table>.svg?...                      one chart as image/svg+xml
    GET /console/reports/<table>.csv|.xlsx?...                one table as a file (the
                     resources table with every resource, not only the top 20)

At a province (a hub counties relay to, docs/province.md) the scopes are one level up:
the whole province, one county, then a school and a teaching point.

Who: ``viewer``, ``reviewer``, ``bureau_admin`` (the county, any school or teaching
point) and ``school_head`` (their own school only: another school is refused, 403).
Every number comes through ``report_tables`` (fewer than five learners -> "<5").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date

from flask import Response, current_app, render_template, request
from markupsafe import Markup

from hub_sync.hub import report_charts
from hub_sync.hub.console.auth import check_school, console_blueprint, current_account, require_role, school_scope
from hub_sync.hub.console_errors import NotFoundError
from hub_sync.hub.report_export import CSV_TYPE, XLSX_TYPE, csv_lines, filename, xlsx_chunks
from hub_sync.hub.report_tables import TABLE_NAMES, table
from hub_sync.hub.reports import Period, Reports, Scope

bp = console_blueprint("console_reports")
ROLES = ("viewer", "reviewer", "school_head")
REPORT_CACHE = 128  # computed reports kept (tables of at most 20 resources, charts: ~100 KB each)
CHARTS = {"weekly": report_charts.trend, "subject": report_charts.bars, "grade": report_charts.bars,
          "kind": report_charts.bars, "resources": lambda t: report_charts.bars(t, limit=10)}


def _asked() -> tuple[Period, Scope, Reports]:
    """The period and scope of this request; a school head is held to their own school."""
    reports = Reports(current_app.extensions["hub"].db)
    period = Period.parse(request.args.get("first"), request.args.get("last"), today=date.today())
    own = school_scope()
    school = (request.args.get("school") or "").strip()
    if own is not None:
        check_school(school or own)  # another school: 403
        school = own
    return period, Scope.parse(school, request.args.get("point"), None if own else request.args.get("county")), reports


class ReportCache:
    """Computed reports (every table, already suppressed, and its charts) per period, scope and
    data version (``Reports.version``): a report is computed again as soon as usage for one of
    its days is stored in its scope, and otherwise shared by every reader asking for the same
    period and scope (a county's readers mostly look at the same ones). The page around it is
    rendered per request (it holds the reader's name and CSRF token)."""

    def __init__(self, size: int = REPORT_CACHE) -> None:
        self.size = size
        self._items: OrderedDict[tuple, dict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, item: dict) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


computed = ReportCache()


@bp.get("/console/reports")
@require_role(*ROLES)
def report_page():
    period, scope, reports = _asked()
    key = (period, scope, reports.version(period, scope))
    report = computed.get(key)
    if report is None:
        report = _compute(period, scope, reports)
        computed.put(key, report)
    own = school_scope()
    schools = [s for s in reports.schools(scope.county) if own is None or s[0] == own]
    counties = reports.counties() if own is None else []
    return render_template("county/reports.html", me=current_account(), period=period, scope=scope, schools=schools,
                           counties=counties,
                           points=reports.points(scope.school), query=request.query_string.decode(), **report)


def _compute(period: Period, scope: Scope, reports: Reports) -> dict:
    tables = {name: table(name, period, scope, reports) for name in TABLE_NAMES}
    for t in tables.values():
        t.rows = list(t.rows)  # generators: a kept report is read by many pages
    charts = {name: Markup(CHARTS[name](tables[name])) for name in ("weekly", "subject", "kind")}
    return {"tables": tables, "charts": charts, "empty": tables["totals"].rows[0][2] == 0,
            "latest": reports.latest_day()}


@bp.get("/console/reports/<name>.<fmt>")
@require_role(*ROLES)
def report_file(name: str, fmt: str):
    if name not in TABLE_NAMES or fmt not in ("svg", "csv", "xlsx") or (fmt == "svg" and name not in CHARTS):
        raise NotFoundError("没有这个报表", "no such report table")
    period, scope, reports = _asked()
    if fmt == "svg":
        return Response(CHARTS[name](table(name, period, scope, reports)), content_type="image/svg+xml; charset=utf-8")
    t = table(name, period, scope, reports, limit=None)
    body, ctype = (csv_lines(t), CSV_TYPE) if fmt == "csv" else (xlsx_chunks(t), XLSX_TYPE)
    return Response(body, content_type=ctype,
                    headers={"Content-Disposition": f"attachment; filename={filename(t, period.first, period.last, fmt)}"})
