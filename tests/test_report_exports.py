"""Report tables: the fewer-than-five rule, xlsx and CSV exports (100,000 rows, memory bounded),
and server-drawn SVG charts without scripts."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest
from openpyxl import load_workbook

from fixtures.common import SCHOOL
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import UsageEvent, encode_batch
from hub_sync.hub import report_charts
from hub_sync.hub.channels import Channels
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry
from hub_sync.hub.report_export import BOM, csv_lines, xlsx_chunks
from hub_sync.hub.report_tables import table
from hub_sync.hub.reports import Period, Reports, Scope

DAY = 1_788_000_000.0  # 2026-08-29 (county time)
PERIOD = Period.parse("2026-08-24", "2026-09-06")


@pytest.fixture
def two_schools(hub, tmp_path):
    """School A: 3 learners on 语文; school B: 12 learners on 数学 and 1 on 英语; one teacher each."""
    Channels(hub.db).put_channel("c1", "测试", True)
    for rid, subject in (("yw", "语文"), ("sx", "数学"), ("yy", "英语")):
        hub.db.execute("insert into hub_resources (id, channel, meta, files, updated_at) values (?, 'c1', ?, '[]', 0)",
                       [rid, f'{{"title": "{subject}课", "subject": "{subject}", "grade": "三年级", "kind": "video"}}'])
    plan = {("edge-a", SCHOOL): [(f"person:{i}", "yw") for i in range(3)],
            ("edge-b", "4401020399"): [(f"person:{i}", "sx") for i in range(12)] + [("person:50", "yy")]}
    for (device, school), uses in plan.items():
        signer = generate_key(tmp_path / f"{device}.pem")
        Registry(hub.db).register(device, school, public_key_dict(signer))
        acts = [("person:900", "assigned", "assignment:1", {"resource_id": uses[0][1]})]
        acts += [(who, verb, f"resource:{res}", {}) for who, res in uses for verb in ("viewed", "completed")]
        events = [UsageEvent(i + 1, DAY + i, a, v, o, d) for i, (a, v, o, d) in enumerate(acts)]
        UsageIngest(hub.db).ingest(seal("usage-batch", encode_batch(events, device, school), signer))
    return Reports(hub.db)


def test_cells_describing_fewer_than_five_learners_are_suppressed(two_schools):
    school_a = table("totals", PERIOD, Scope("school", SCHOOL), two_schools)
    assert list(school_a.rows) == [["<5", 1, "<5", 1, "<5"]]  # learners, teachers, uses, assignments, hand-ins
    county = table("totals", PERIOD, Scope(), two_schools)
    assert list(county.rows) == [[16, 2, 34, 2, 0]]
    by_subject = {r[0]: r[1:3] for r in table("subject", PERIOD, Scope(), two_schools).rows}
    assert by_subject == {"数学": [25, 12], "语文": ["<5", "<5"], "英语": ["<5", "<5"]}
    resources = list(table("resources", PERIOD, Scope("school", "4401020399"), two_schools).rows)
    assert resources[0][:6] == ["数学课", "数学", "三年级", "video", 25, 12] and resources[1][4:6] == ["<5", "<5"]
    for name in ("weekly", "grade", "kind"):  # no table anywhere shows a count of 1-4 learners
        for row in table(name, PERIOD, Scope("school", SCHOOL), two_schools).rows:
            assert not any(isinstance(v, int) and 0 < v < 5 for v in row[1:2])


def test_csv_starts_with_a_bom_and_parses_back(two_schools):
    t = table("subject", PERIOD, Scope(), two_schools)
    data = b"".join(csv_lines(t))
    assert data.startswith(BOM.encode("utf-8"))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "学科 subject" and ["数学", "25", "12", "1", "0"] in rows and ["语文", "<5", "<5", "1", "<5"] in rows


def test_xlsx_opens_with_openpyxl(two_schools, tmp_path):
    t = table("resources", PERIOD, Scope(), two_schools)
    path = tmp_path / "r.xlsx"
    path.write_bytes(b"".join(xlsx_chunks(t, tmp_path)))
    wb = load_workbook(path, read_only=True)
    rows = [list(r) for r in wb.active.iter_rows(values_only=True)]
    wb.close()
    assert rows[0] == ["最常用的资源 Most used resources"] and rows[1][0] == "资源 resource"
    assert rows[2][:6] == ["数学课", "数学", "三年级", "video", 25, 12]
    assert list(tmp_path.glob("*.xlsx")) == [path]  # the temporary workbook is gone


EXPORT_CHILD = """
import resource, sys
from hub_sync.hub.report_export import csv_lines, write_xlsx
from hub_sync.hub.report_tables import EVENTS, LEARNERS, Column, Table
n, out = int(sys.argv[1]), sys.argv[2]
def big():
    cols = [Column("title", "资源", "resource"), Column("subject", "学科", "subject"), EVENTS, LEARNERS]
    return Table("big", "大表", "big table", cols, ([f"资源{i:06d}", "数学", i, i % 7] for i in range(n)))
with open(out + ".csv", "wb") as f:
    for piece in csv_lines(big()):
        f.write(piece)
write_xlsx(big(), out + ".xlsx")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def export_in_child(n: int, out) -> int:
    """Export an n-row table as CSV and xlsx in a fresh interpreter; its peak memory in KiB."""
    done = subprocess.run([sys.executable, "-c", EXPORT_CHILD, str(n), str(out)], capture_output=True, text=True,
                          check=True, timeout=120)
    return int(done.stdout.strip())


@pytest.mark.slow
def test_an_export_of_100000_rows_is_streamed_with_bounded_memory(tmp_path):
    small = export_in_child(5_000, tmp_path / "small")
    big = export_in_child(100_000, tmp_path / "big")
    assert big - small < 16 * 1024, (small, big)  # 20 times the rows, (almost) the same memory
    data = (tmp_path / "big.csv").read_bytes()
    assert data.startswith(BOM.encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 100_001 and rows[-1] == ["资源099999", "数学", "99999", str(99999 % 7)]
    wb = load_workbook(tmp_path / "big.xlsx", read_only=True)
    count, last = 0, None
    for row in wb.active.iter_rows(values_only=True):
        count, last = count + 1, row
    wb.close()
    assert count == 100_002 and list(last) == ["资源099999", "数学", 99999, 99999 % 7]


def test_charts_are_svg_without_scripts_and_an_empty_period_draws_no_data(two_schools):
    svg = report_charts.bars(table("subject", PERIOD, Scope(), two_schools))
    assert svg.startswith("<svg") and "<script" not in svg and "数学" in svg
    empty = Period.parse("2030-01-01", "2030-01-14")
    svg = report_charts.bars(table("subject", empty, Scope(), two_schools))
    assert "<script" not in svg and "no data" in svg
    svg = report_charts.trend(table("weekly", empty, Scope(), two_schools))  # weeks of zeros
    assert "<script" not in svg and "01-07~01-13" in svg
