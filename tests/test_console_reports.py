"""The fleet and report pages against a real hub under gunicorn, as each role: what each
may see, a school head held to their school, exports, bad periods and empty ones."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import time

import pytest
from openpyxl import load_workbook

from fixtures.common import SCHOOL
from hub_sync.core.keys import generate_key, public_key_dict
from hub_sync.formats.device_report import DeviceReport
from hub_sync.formats.envelope import seal
from hub_sync.formats.usage_batch import UsageEvent, encode_batch
from hub_sync.hub.channels import Channels
from hub_sync.hub.fleet import Fleet
from hub_sync.hub.ingest import UsageIngest
from hub_sync.hub.registry import Registry

OTHER = "4401020399"
DAY = 1_788_000_000.0  # 2026-08-29, county time
Q = "first=2026-08-10&last=2026-08-30"  # the usage is in the last week


@pytest.fixture
def county_usage(hub, tmp_path):
    """School A (3 learners, one device at 岭下教学点, one silent device); school B (12 learners); both reported."""
    Channels(hub.db).put_channel("c1", "测试", True)
    for rid, subject in (("yw", "语文"), ("sx", "数学")):
        hub.db.execute("insert into hub_resources (id, channel, meta, files, updated_at) values (?, 'c1', ?, '[]', 0)",
                       [rid, f'{{"title": "{subject}第一课", "subject": "{subject}", "grade": "三年级", "kind": "video"}}'])
    plan = {("edge-a", SCHOOL, "岭下教学点"): [(f"person:{i}", "yw") for i in range(3)],
            ("edge-b", OTHER, ""): [(f"person:{i}", "sx") for i in range(12)],
            ("edge-q", SCHOOL, "石门教学点"): []}
    fleet = Fleet(hub.db)
    for (device, school, point), uses in plan.items():
        signer = generate_key(tmp_path / f"{device}.pem")
        Registry(hub.db).register(device, school, public_key_dict(signer), school_name=f"学校{school[-2:]}")
        if uses:
            acts = [(who, verb, f"resource:{res}", {}) for who, res in uses for verb in ("viewed", "completed")]
            events = [UsageEvent(i + 1, DAY + i, a, v, o, d) for i, (a, v, o, d) in enumerate(acts)]
            UsageIngest(hub.db).ingest(seal("usage-batch", encode_batch(events, device, school), signer))
        report = DeviceReport(device, school, 1, time.time(), "1.2.3", point, {"version": "1.2.3", "last_result": "none"},
                              {"last_attempt": "x", "last_success": "2026-08-29 08:00:00", "last_error": ""},
                              8 * 10**9, 0, 0, 0)
        fleet.record(report, school, now=time.time() - (20 * 86400 if device == "edge-q" else 0))
    return hub


def test_a_viewer_sees_the_county_report_with_small_counts_suppressed(county_usage, console_as):
    viewer = console_as("viewer")
    page = viewer.get(f"/console/reports?{Q}")
    assert page.status_code == 200 and "使用情况统计" in page.text
    assert "数学第一课" in page.text and "<svg" in page.text and "<script" not in page.text
    assert "<5" not in page.text.split('data-table="totals"')[1].split("</table>")[0]  # 15 learners county-wide
    school_a = viewer.get(f"/console/reports?{Q}&school={SCHOOL}").text
    assert 'class="suppressed"' in school_a  # 3 learners: "<5", never 3
    assert "岭下教学点" in school_a
    idle = viewer.get(f"/console/reports?{Q}").text.split('data-table="idle_points"')[1].split("</table>")[0]
    assert "石门教学点" in idle and "岭下教学点" not in idle  # 教学点覆盖: the silent point had no use
    svg = viewer.get(f"/console/reports/weekly.svg?{Q}")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "<script" not in svg.text


def test_a_school_head_sees_only_their_school_and_is_refused_another(county_usage, console_as):
    head = console_as("school_head", school=OTHER)
    own = head.get(f"/console/reports?{Q}")
    assert own.status_code == 200 and "数学第一课" in own.text and "语文第一课" not in own.text
    assert f'value="{SCHOOL}"' not in own.text  # the scope list names only their school
    for url in (f"/console/reports?{Q}&school={SCHOOL}", f"/console/reports/resources.csv?{Q}&school={SCHOOL}",
                f"/console/reports/weekly.svg?{Q}&school={SCHOOL}"):
        refused = head.get(url)
        assert refused.status_code == 403 and "只能查看本校" in refused.text and "语文" not in refused.text
    assert head.get("/console/fleet").status_code == 403


def test_roles_that_may_not_see_a_page_are_refused(county_usage, console_as, gunicorn_hub):
    import httpx

    assert console_as("technician").get(f"/console/reports?{Q}").status_code == 403
    assert console_as("viewer").get("/console/fleet").status_code == 403
    anonymous = httpx.get(gunicorn_hub.url + "/console/reports/totals.csv", timeout=10)
    assert anonymous.status_code == 302 and "/console/login" in anonymous.headers["location"]


def test_every_table_exports_as_xlsx_and_csv_with_a_bom(county_usage, console_as, tmp_path):
    viewer = console_as("reviewer")
    data = viewer.get(f"/console/reports/resources.csv?{Q}").content
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][0] == "资源 resource" and ["数学第一课", "数学", "三年级", "video", "24", "12", "0", "0"] in rows
    assert ["语文第一课", "语文", "三年级", "video", "<5", "<5", "0", "<5"] in rows
    for name in ("totals", "subject", "grade", "kind", "resources", "weekly", "idle_points"):
        answer = viewer.get(f"/console/reports/{name}.xlsx?{Q}")
        assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
        (tmp_path / f"{name}.xlsx").write_bytes(answer.content)
        wb = load_workbook(tmp_path / f"{name}.xlsx", read_only=True)
        assert len(list(wb.active.iter_rows(values_only=True))) >= 2
        wb.close()


def test_bad_or_empty_periods_get_a_clear_message(county_usage, console_as):
    viewer = console_as("viewer")
    for query, words in (("first=2026-09-10&last=2026-09-01", "晚于结束日期"), ("first=2026-02-30", "日期格式应为"),
                         ("first=2026-01-01&last=2026-01-01&point=岭下教学点", "也要选择学校")):
        answer = viewer.get(f"/console/reports?{query}")
        assert answer.status_code == 400 and words in answer.text
    empty = viewer.get("/console/reports?first=2030-01-01&last=2030-01-31")
    assert empty.status_code == 200 and "这个时间段没有使用数据" in empty.text and "2026-08-29" in empty.text
    assert viewer.get("/console/reports/nope.csv").status_code == 404


def test_the_fleet_page_highlights_silent_devices_and_filters_by_state(county_usage, console_as):
    tech = console_as("technician")
    page = tech.get("/console/fleet")
    assert page.status_code == 200 and all(d in page.text for d in ("edge-a", "edge-b", "edge-q"))
    assert 'class="device-silent" data-device="edge-q"' in page.text and "岭下教学点" in page.text
    silent = tech.get("/console/fleet?state=silent").text
    assert "edge-q" in silent and 'data-device="edge-a"' not in silent
    assert 'data-device="edge-q"' in tech.get("/console/fleet?silent_days=30&state=ok").text
    device = tech.get("/console/fleet/edge-a")
    assert device.status_code == 200 and "报告历史" in device.text and "1.2.3" in device.text
    assert tech.get("/console/fleet/edge-zz").status_code == 404
    assert tech.get("/console/fleet?state=bogus").status_code == 400
    rows = list(csv.reader(io.StringIO(tech.get("/console/fleet.csv").content.decode("utf-8-sig"))))
    assert len(rows) == 4 and rows[0][0] == "学校代码 school code"


def test_hub_status_still_works_with_rollups(county_usage):
    county_usage.close()
    done = subprocess.run([sys.executable, "-m", "edge_agent.cli", "hub", "status", "--data", str(county_usage.data_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "devices" in done.stdout, done.stderr


def test_a_kept_page_is_computed_again_once_new_usage_arrives(county_usage, console_as, tmp_path):
    viewer = console_as("viewer")
    url = f"/console/reports?{Q}&school={OTHER}"

    def overview(page: str) -> str:
        return page.split('data-table="totals"')[1].split("</table>")[0]

    first = overview(viewer.get(url).text)
    assert overview(viewer.get(url).text) == first and "<td>12</td>" in first  # kept: the same page
    signer = generate_key(tmp_path / "late.pem")
    Registry(county_usage.db).register("edge-late", OTHER, public_key_dict(signer))
    events = [UsageEvent(i + 1, DAY + 100 + i, f"person:{i}", "viewed", "resource:sx", {}) for i in range(8)]
    UsageIngest(county_usage.db).ingest(seal("usage-batch", encode_batch(events, "edge-late", OTHER), signer))
    assert "<td>20</td>" in overview(viewer.get(url).text)  # 12 + 8 learners (one device each)
