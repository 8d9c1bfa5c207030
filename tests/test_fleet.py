"""The fleet: a real appliance's sync reports its state to a real hub; replays, forged and
malformed reports change nothing; states (silent, warning) and history."""

from __future__ import annotations

import dataclasses
import time

import httpx
import pytest

from edge_agent.sync.device_report import collect
from edge_agent.sync.usage_sync import upload_pending
from hub_sync.core.keys import generate_key, load_signer
from hub_sync.formats.device_report import REPORT_CONTENT_TYPE, seal_report
from hub_sync.hub.fleet import Fleet
from fixtures.usage import classroom_acts

URL = "/api/v1/hub/device-report"


def fleet_rows(hub) -> list:
    return [hub.db.execute(f"select * from {t} order by 1, 2").fetchall() for t in ("fleet_devices", "fleet_history")]


def post(server, body: bytes) -> httpx.Response:
    return httpx.post(server.url + URL, content=body, headers={"Content-Type": REPORT_CONTENT_TYPE}, timeout=10)


def test_a_sync_reports_the_devices_state_to_the_fleet(enrolled_appliance, hub, gunicorn_hub):
    app = enrolled_appliance
    app.journal.append_many(classroom_acts(200))
    upload_pending(app, gunicorn_hub.url)
    [row] = Fleet(hub.db).list()
    assert row["device_id"] == app.device_id and row["teaching_point"] == "岭下教学点" and row["state"] == "ok"
    assert row["report_seq"] == 1 and row["pending_usage"] == 0 and row["corrupt_files"] == 0
    assert row["version"] == row["firmware"]["version"] and row["firmware"]["last_result"] == "none"
    assert row["disk_free_bytes"] > 0 and abs(row["clock_offset_s"]) < 5
    upload_pending(app, gunicorn_hub.url)  # the next sync: a second report, kept in the history
    assert [h["report_seq"] for h in Fleet(hub.db).history(app.device_id)] == [2, 1]


def test_the_hub_computes_the_clock_offset_from_its_own_time(enrolled_appliance, hub, gunicorn_hub):
    signer = load_signer(enrolled_appliance.data_dir / "keys" / "device.pem")
    report = dataclasses.replace(collect(enrolled_appliance), sent_at=time.time() - 3 * 3600)  # a clock 3 h late
    answer = post(gunicorn_hub, seal_report(report, signer)).json()
    assert answer["stored"] is True and -3 * 3600 - 5 < answer["clock_offset_s"] < -3 * 3600 + 5
    assert Fleet(hub.db).list()[0]["clock_offset_s"] == pytest.approx(-3 * 3600, abs=5)


def test_a_replayed_or_older_report_is_ignored(enrolled_appliance, hub, gunicorn_hub):
    signer = load_signer(enrolled_appliance.data_dir / "keys" / "device.pem")
    old = seal_report(dataclasses.replace(collect(enrolled_appliance), pending_usage=7), signer)
    new = seal_report(collect(enrolled_appliance), signer)
    assert post(gunicorn_hub, new).json()["stored"] is True
    before = fleet_rows(hub)
    for body in (new, old):  # the same report again, then an older one carried in late
        answer = post(gunicorn_hub, body)
        assert answer.status_code == 200 and answer.json()["stored"] is False
    assert fleet_rows(hub) == before and Fleet(hub.db).list()[0]["pending_usage"] == 0


def test_forged_malformed_or_unknown_reports_are_refused_and_change_nothing(enrolled_appliance, hub, gunicorn_hub, tmp_path):
    report = collect(enrolled_appliance)
    forged = seal_report(report, generate_key(tmp_path / "other.pem"))
    other_school = seal_report(dataclasses.replace(report, school_code="9999999999"),
                               load_signer(enrolled_appliance.data_dir / "keys" / "device.pem"))
    unknown = seal_report(dataclasses.replace(report, device_id="edge-nobody"), generate_key(tmp_path / "n.pem"))
    before = fleet_rows(hub)
    for body, status, words in ((forged, 403, "signature"), (other_school, 400, "another device or school"),
                                (unknown, 403, "unknown device"), (b"{not json", 400, "not a signed envelope"),
                                (b"x" * 100_000, 400, "too large")):
        answer = post(gunicorn_hub, body)
        assert answer.status_code == status and words in answer.json()["error"]["message_en"], answer.text
    assert fleet_rows(hub) == before == [[], []]


def test_states_silent_warning_and_never(enrolled_appliance, hub):
    fleet = Fleet(hub.db)
    assert fleet.list()[0]["state"] == "never"
    report = collect(enrolled_appliance)
    fleet.record(report, report.school_code, now=time.time() - 10 * 86400)
    assert [r["state"] for r in fleet.list()] == ["silent"] and fleet.list(state="silent")
    assert fleet.list(state="ok") == [] and fleet.list()[0]["silent_days"] >= 9.9
    assert fleet.list(silent_days=30)[0]["state"] == "ok"
    failed = dataclasses.replace(report, seq=report.seq + 1, corrupt_files=2,
                                 content_sync={"last_attempt": "x", "last_success": "", "last_error": "hub down"})
    fleet.record(failed, report.school_code)
    assert fleet.list()[0]["state"] == "warning" and fleet.list(school_code="nope") == []
