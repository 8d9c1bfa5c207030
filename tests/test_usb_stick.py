"""Provisioning by USB stick: make at the county, verify and apply on the device in one go."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixtures.common import OTHER_SCHOOL, SCHOOL
from fixtures.servers import tmpfs
from fixtures.usb import PASSPHRASE, device_state, roster_bytes, tree

from edge_agent.cli import main
from edge_agent.spaces.errors import RosterError as SpaceRosterError
from hub_sync.core.errors import SignatureError
from hub_sync.hub import Hub
from provisioning import stick
from provisioning.errors import BundleError
from provisioning.usb_apply import apply_stick, plan_stick
from provisioning.errors import (IncompleteError, StickTooSmallError, UnsafePathError, UsbError, WrongPassphraseError,
                                     WrongSchoolError)


def school_folder(usb_world, code=SCHOOL) -> Path:
    return usb_world.stick / "school-edge" / code


def test_empty_device_becomes_a_serving_school_with_one_stick(usb_world):
    report = usb_world.make()
    assert report.roster and report.content_files == 3  # index + two files
    app = usb_world.appliance()
    plan = plan_stick(app, usb_world.stick)
    assert plan["school_code"] == SCHOOL and plan["needs_passphrase"] and plan["content"]["resources"] == 1
    assert app.school_code == ""  # planning changes nothing

    summary = apply_stick(app, usb_world.stick, PASSPHRASE)

    assert summary["changed"] and app.school_code == SCHOOL and app.identity("school_name") == "红星小学"
    assert json.loads(app.identity("teaching_points")) == ["岭下教学点"]
    total, found = app.catalogue.search("拼音")
    assert total == 1 and len(found[0].files) == 2 and all(app.store.has(f.sha256) for f in found[0].files)
    names = sorted(r[0] for r in app.db.execute("select name from people"))
    assert names == ["张三", "李四", "王老师"]
    assert [r[0] for r in app.db.execute("select name from classes")] == ["一年级1班"]
    assert summary["roster"]["staff_passwords"][0]["number"] == "T001"
    assert (app.data_dir / "keys" / "device.pem").stat().st_mode & 0o077 == 0
    request = Path(summary["enrollment_request"])
    assert request.is_file() and request.parent.parent == school_folder(usb_world)
    settings = json.loads((app.data_dir / "settings.json").read_text())
    assert settings["sync_window"] == "22:00-06:00" and settings["hub_url"].startswith("http://127.0.0.1")


def test_planning_a_stick_changes_nothing_on_the_device(usb_world):
    usb_world.make()
    app = usb_world.appliance()
    before = device_state(app)
    assert plan_stick(app, usb_world.stick)["content"]["files"] == 2
    assert device_state(app) == before
    stranger = Hub.init(usb_world.tmp / "stranger-hub", reserve_mb=1)
    try:  # the technician looked at one stick, then applies another hub's: nothing was pinned by looking
        other = usb_world.tmp / "other"
        other.mkdir()
        usb_world.make(hub=stranger, stick=other)
    finally:
        stranger.close()
    applied = apply_stick(app, other, PASSPHRASE)
    assert applied["changed"] and applied["content"]["resources"] == 0 and app.school_code == SCHOOL


def test_applying_the_same_stick_twice_changes_nothing_the_second_time(usb_world):
    usb_world.make()
    app = usb_world.appliance()
    apply_stick(app, usb_world.stick, PASSPHRASE)
    before, stick_before = device_state(app), tree(usb_world.stick)
    again = apply_stick(app, usb_world.stick, PASSPHRASE)
    assert again["changed"] is False
    assert device_state(app) == before and tree(usb_world.stick) == stick_before
    assert plan_stick(app, usb_world.stick)["already_applied"]


def test_stick_for_another_school_is_refused_and_nothing_changes(usb_world):
    usb_world.make()
    app = usb_world.appliance()
    apply_stick(app, usb_world.stick, PASSPHRASE)
    other = usb_world.tmp / "other-stick"
    other.mkdir()
    usb_world.make(OTHER_SCHOOL, "青山小学", stick=other)
    before = device_state(app)
    with pytest.raises(WrongSchoolError) as err:
        apply_stick(app, other, PASSPHRASE)
    assert SCHOOL in str(err.value) and "use this school's stick" in str(err.value)
    assert device_state(app) == before


def test_stick_with_several_schools_needs_a_choice(usb_world):
    usb_world.make()
    usb_world.make(OTHER_SCHOOL, "青山小学")
    app = usb_world.appliance()
    with pytest.raises(WrongSchoolError, match="--school"):
        plan_stick(app, usb_world.stick)
    assert apply_stick(app, usb_world.stick, PASSPHRASE, school=OTHER_SCHOOL)["school_code"] == OTHER_SCHOOL


@pytest.mark.parametrize("victim", ["stick.json", "bundle/bundle.json", "roster.sealed"])
def test_tampered_stick_is_refused_and_nothing_changes(usb_world, victim):
    usb_world.make()
    path = school_folder(usb_world) / victim
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    app = usb_world.appliance()
    before = device_state(app)
    with pytest.raises((BundleError, SignatureError)):
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert device_state(app) == before and app.school_code == ""


def test_stick_signed_by_an_unknown_hub_is_refused(usb_world):
    usb_world.make()
    app = usb_world.appliance()
    apply_stick(app, usb_world.stick, PASSPHRASE)
    stranger = Hub.init(usb_world.tmp / "stranger-hub", reserve_mb=1)
    try:
        strange_stick = usb_world.tmp / "strange"
        strange_stick.mkdir()
        usb_world.make(hub=stranger, stick=strange_stick, content=False)
    finally:
        stranger.close()
    before = device_state(app)
    with pytest.raises(SignatureError, match="unknown key"):
        apply_stick(app, strange_stick, PASSPHRASE)
    assert device_state(app) == before


def test_settings_from_another_stick_cannot_be_swapped_in(usb_world):
    usb_world.make()
    other = usb_world.tmp / "other"
    other.mkdir()
    usb_world.make(stick=other, content=False, sync_window="09:00-10:00")
    shutil.copy(school_folder(usb_world).parent.parent.parent / "other" / "school-edge" / SCHOOL / "stick.json",
                school_folder(usb_world) / "stick.json")
    app = usb_world.appliance()
    with pytest.raises(BundleError, match="do not belong together"):
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert app.school_code == ""


def test_expired_stick_is_refused(usb_world):
    usb_world.make(valid_days=-1)
    app = usb_world.appliance()
    before = device_state(app)
    with pytest.raises(BundleError, match="expired"):
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert device_state(app) == before


def test_wrong_passphrase_is_refused_and_nothing_changes(usb_world):
    usb_world.make()
    app = usb_world.appliance()
    before = device_state(app)
    with pytest.raises(WrongPassphraseError):
        apply_stick(app, usb_world.stick, "not the passphrase")
    assert device_state(app) == before and app.school_code == ""


def test_roster_problems_are_all_listed_by_line_and_nothing_is_applied(usb_world):
    bad = roster_bytes(["姓名,学籍号,性别,年级,班级,角色",
                        "张三,G110101201501011234,男,一年级,一年级1班,学生",
                        "",
                        "李四,12345,女,一年级,一年级1班,学生",
                        "王五,G110101201503031236,未知,一年级,一年级1班,学生",
                        "赵老师,T002,女,,三年级9班,教师"])
    usb_world.make(roster=bad)
    app = usb_world.appliance()
    before = device_state(app)
    with pytest.raises(SpaceRosterError) as err:
        apply_stick(app, usb_world.stick, PASSPHRASE)
    lines = sorted({p["line"] for p in err.value.details["problems"]})
    assert lines == [4, 5, 6]
    assert device_state(app) == before and app.catalogue.count() == 0
    secret = usb_world.tmp / "pass.txt"
    secret.write_text(PASSPHRASE)
    data = app.data_dir
    app.close()
    out = CliRunner().invoke(main, ["provision", "apply", str(usb_world.stick), "--data", str(data), "--passphrase-file", str(secret)])
    assert out.exit_code == 1
    for line in (4, 5, 6):
        assert f"line {line}:" in out.output


@pytest.mark.parametrize("rel", ["../etc/passwd", "/etc/passwd", "a/../../b", "..", "a\\..\\b", "a/\x00b", ""])
def test_names_that_leave_their_folder_are_refused(tmp_path, rel):
    with pytest.raises(UnsafePathError):
        stick.safe_join(tmp_path, rel)


def test_symlink_out_of_the_stick_is_refused(usb_world):
    usb_world.make()
    folder = school_folder(usb_world) / "content"
    target = next((folder / "targets").iterdir())
    target.unlink()
    target.symlink_to("/etc/hostname")
    app = usb_world.appliance()
    before = device_state(app)
    with pytest.raises(Exception) as err:
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert "symbolic link" in str(err.value) or "wrong size" in str(err.value)
    assert device_state(app)[0] == before[0] and app.school_code == ""


def test_marker_naming_a_path_outside_the_folder_is_refused(tmp_path):
    folder = tmp_path / "export"
    stick.write_marker(folder, [{"path": "../../etc/passwd", "size": 1, "sha256": "0" * 64}])
    with pytest.raises(UnsafePathError):
        stick.read_marker(folder)


def test_half_written_stick_is_refused_as_incomplete(usb_world):
    usb_world.make()
    (school_folder(usb_world) / "stick.json").unlink()  # pulled out before the last file
    app = usb_world.appliance()
    with pytest.raises(IncompleteError, match="half-written"):
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert app.school_code == ""


def test_half_written_content_pack_is_refused(usb_world):
    usb_world.make()
    (school_folder(usb_world) / "content" / stick.MARKER).unlink()
    app = usb_world.appliance()
    with pytest.raises(IncompleteError):
        apply_stick(app, usb_world.stick, PASSPHRASE)
    assert app.school_code == "" and app.catalogue.count() == 0


@pytest.fixture
def tiny_stick(tmp_path):
    with tmpfs(tmp_path / "tiny", "size=256k") as mount:
        yield mount


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_stick_too_small_is_reported_before_anything_is_written(usb_world, tiny_stick):
    with pytest.raises(StickTooSmallError) as err:
        usb_world.make(stick=tiny_stick)
    assert "MB" in str(err.value) and "nothing was written" in str(err.value)
    assert list(tiny_stick.iterdir()) == []


def test_cli_makes_and_applies_a_stick(usb_world, tmp_path):
    roster = tmp_path / "名单.csv"
    roster.write_bytes(roster_bytes())
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    runner = CliRunner()
    made = runner.invoke(main, ["provision", "make", "--hub-data", str(usb_world.hub.data_dir), "--school-code", SCHOOL,
                                "--school-name", "红星小学", "--hub-url", "http://127.0.0.1:9", "--out", str(usb_world.stick),
                                "--stick", "--roster", str(roster), "--passphrase-file", str(secret),
                                "--teaching-point", "岭下教学点", "--sync-window", "21:00-05:00"])
    assert made.exit_code == 0, made.output
    assert "Stick written" in made.output
    data = tmp_path / "device"
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("definitely not it")
    refused = runner.invoke(main, ["provision", "apply", str(usb_world.stick), "--data", str(data), "--passphrase-file", str(wrong)])
    assert refused.exit_code == 1 and "wrong passphrase" in refused.output
    shown = runner.invoke(main, ["provision", "apply", str(usb_world.stick), "--data", str(data), "--dry-run"])
    assert shown.exit_code == 0 and "trust the hub" in shown.output
    applied = runner.invoke(main, ["provision", "apply", str(usb_world.stick), "--data", str(data), "--passphrase-file", str(secret)])
    assert applied.exit_code == 0, applied.output
    assert "Provisioned" in applied.output and "initial password T001" in applied.output
    assert json.loads((data / "settings.json").read_text())["sync_window"] == "21:00-05:00"
    again = runner.invoke(main, ["provision", "apply", str(usb_world.stick), "--data", str(data), "--passphrase-file", str(secret)])
    assert again.exit_code == 0 and "nothing will change" in again.output


def test_roster_saved_as_utf8_with_bom_works_too(usb_world):
    usb_world.make(roster=roster_bytes(encoding="utf-8-sig"))
    app = usb_world.appliance()
    summary = apply_stick(app, usb_world.stick, PASSPHRASE)
    assert summary["roster"]["created"] == 3
    assert sorted(r[0] for r in app.db.execute("select name from people")) == ["张三", "李四", "王老师"]


@pytest.mark.slow  # a real server started and stopped: ~10 s
def test_provisioned_device_serves_the_stick_content(usb_world, serve_edge):
    import httpx

    usb_world.make()
    app = usb_world.appliance()
    apply_stick(app, usb_world.stick, PASSPHRASE)
    data = app.data_dir
    expected = {f.path: f.sha256 for f in app.catalogue.get("r-pinyin").files}
    app.close()
    server = serve_edge(data)
    status = httpx.get(server.base + "/api/v1/status").json()
    assert status["school_code"] == SCHOOL
    [res] = httpx.get(server.base + "/api/v1/resources", params={"q": "拼音"}).json()["resources"]
    for f in res["files"]:
        body = httpx.get(server.base + f["url"]).content
        assert hashlib.sha256(body).hexdigest() == expected[f["path"]]


@pytest.mark.parametrize("errno_, kind, text", [(28, StickTooSmallError, "stick is full"),
                                                (5, UsbError, "pulled out"), (2, UsbError, "run the same step again")])
def test_a_failing_stick_becomes_one_clear_message(errno_, kind, text):
    with pytest.raises(kind, match=text):
        with stick.stick_io("/media/usb"):
            raise OSError(errno_, os.strerror(errno_))
