"""The technician and the school administrator in a real browser: device status, "sync now" against a
real county hub with live progress, roster import with its error list, and who may open the page."""

import json
import os

import pytest

from fixtures.browser import LAPTOP, ROSTER, Site, staff_login
from fixtures.common import PASSWORD
from fixtures.sync import SyncEnv
from hub_sync.core.processes import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a served site and Chromium: seconds per test


@pytest.fixture
def device(tmp_path):
    """A provisioned appliance whose county hub has one new resource, served for real."""
    from edge_agent.spaces.login import set_staff_password
    from edge_agent.spaces.people import find_by_number
    from edge_agent.spaces.roster_apply import import_roster

    env = SyncEnv(tmp_path)
    env.add("yuwen-1", "hub-r1", {"index.html": "<h1>县里的新课</h1>".encode(), "audio.wav": os.urandom(400_000)},
            title="县里的新课 a o e", chapter="汉语拼音")
    env.publish()
    import_roster(env.app.db, ROSTER.encode("utf-8"))
    for number in ("T0099", "T0100", "T0001"):
        set_staff_password(env.app.db, find_by_number(env.app.db, number).id, PASSWORD, must_change=False)
    env.app.close()
    site = Site(env.config.data_dir)
    from fixtures.browser import School

    site.school = School()
    site.start()
    yield site
    site.stop()
    env.close()


def test_technician_syncs_now_and_watches_the_progress(pages, device):
    page = pages.open(LAPTOP)
    staff_login(page, device, "T0099")
    assert page.url == device.base + "/technician"
    status = page.locator("#status")
    assert status.locator("dd[data-k=catalogue_version]").inner_text() in ("0", "无")
    assert "从未" in status.locator("dd[data-k=last_sync_success]").inner_text()
    page.click("#sync-now")
    assert page.locator("#sync-now").is_disabled()
    page.locator("#sync-progress").wait_for(state="visible")
    page.wait_for_function("document.getElementById('sync-message').className === 'ok'", timeout=30_000)
    assert page.locator("#sync-message").inner_text().startswith("同步完成")
    assert page.evaluate("document.getElementById('sync-progress').value") == 100
    page.reload()
    assert int(page.locator("dd[data-k=catalogue_version]").inner_text()) >= 1
    assert "从未" not in page.locator("dd[data-k=last_sync_success]").inner_text()
    page.goto(device.base + "/library?q=县里的新课")
    assert page.locator(".card .title").all_inner_texts() == ["县里的新课 a o e"]

    page.goto(device.base + "/technician")  # the school picks an optional channel (自主选用)
    toggle = page.locator("button.channel-toggle[data-channel=math-1]")
    assert toggle.inner_text() == "订阅"
    assert page.locator("#channel-rows tr", has_text="yuwen-1").locator("button").count() == 0  # mandatory
    toggle.click()
    page.wait_for_function("document.getElementById('channel-result').textContent.length > 0")
    assert page.locator("#channel-result").inner_text() == "已更改。下次同步时生效。"
    page.click("#sync-now")
    page.wait_for_function("document.getElementById('sync-message').className === 'ok'", timeout=30_000)
    page.reload()
    assert page.locator("button.channel-toggle[data-channel=math-1]").inner_text() == "退订"


def test_administrator_sees_every_roster_problem_and_nothing_is_imported(pages, device, tmp_path):
    page = pages.open(LAPTOP)
    staff_login(page, device, "T0100")
    page.goto(device.base + "/technician")
    bad = tmp_path / "bad.csv"
    bad.write_text("姓名,学籍号,性别,年级,班级,角色\n新同学,G12345,男,一年级,一年级1班,学生\n<b>坏</b>,,X,一年级,一年级1班,学生\n", "utf-8")
    before = page.request.get(device.base + "/api/v1/login/classes").json()
    page.set_input_files("#roster-file", str(bad))
    page.click("#roster-go")
    page.locator("table.problems").wait_for(state="visible")
    rows = page.locator("table.problems tbody tr")
    assert rows.count() >= 2
    assert {rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())} >= {"2", "3"}
    assert "未导入" in page.locator("#roster-file-error").inner_text()
    assert page.locator("table.problems b").count() == 0  # a name is text, never markup
    assert page.request.get(device.base + "/api/v1/login/classes").json() == before
    good = tmp_path / "good.csv"
    good.write_text("姓名,学籍号,性别,年级,班级,角色\n新同学,G110101201501010099,男,一年级,一年级3班,学生\n", "utf-8")
    page.set_input_files("#roster-file", str(good))
    page.click("#roster-go")
    page.wait_for_function("document.querySelector('#roster .form-result').textContent.length > 0")
    assert page.locator("#roster .form-result").inner_text() == "名单已导入：新增 1 人，更新 0 人。"


def test_device_page_is_for_technicians_and_administrators_only(pages, device):
    page = pages.open(LAPTOP)
    assert page.goto(device.base + "/technician").url.startswith(device.base + "/login?next=")
    staff_login(page, device, "T0001")  # a teacher
    response = page.goto(device.base + "/technician")
    assert response.status == 403 and "技术员和管理员" in page.locator(".error-page").inner_text()
    assert page.request.post(device.base + "/api/v1/sync", headers={"X-CSRF-Token": "x"}).status == 403


@pytest.fixture
def stick_device(tmp_path):
    """An appliance not yet provisioned, with a provisioning stick mounted where sticks appear."""
    from fixtures.usb import UsbWorld

    world = UsbWorld(tmp_path)
    root = tmp_path / "media"
    label = root / "technician" / "KINGSTON"
    label.parent.mkdir(parents=True)
    world.stick.rename(label)
    world.stick = label
    world.make()
    data = tmp_path / "edge"
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"usb_mount_roots": str(root)}), "utf-8")
    site = Site(data)
    site.start()
    from provisioning.watcher import read_plans

    wait_until(lambda: read_plans(data), 20, "the appliance to notice the stick (and finish its first look at it)")
    yield site, world
    site.stop()
    world.close()


def test_technician_sets_up_a_new_device_from_a_usb_stick_on_its_own_screen(pages, stick_device):
    from fixtures.common import SCHOOL
    from fixtures.usb import PASSPHRASE

    site, world = stick_device
    page = pages.open(LAPTOP)
    page.goto(site.base + "/technician")  # no accounts yet: the device's own screen may set it up
    page.wait_for_function("document.getElementById('usb-list').children.length > 0", timeout=30_000)
    card = page.locator(".usb-stick")
    assert card.count() == 1, page.locator("#usb-list").inner_text()
    assert "KINGSTON" in card.locator("strong").inner_text()
    page.locator(".usb-stick input[type=password]").fill("这不是口令 wrong")
    page.click(".usb-provision")
    error = page.locator(".usb-stick .field-error")
    page.wait_for_function("document.querySelector('.usb-stick .field-error').textContent.length > 0", timeout=60_000)
    assert "没有成功" in error.inner_text()
    assert page.request.get(site.base + "/api/v1/status").json()["school_code"] == ""
    page.locator(".usb-stick input[type=password]").fill(PASSPHRASE)
    page.click(".usb-provision")
    page.wait_for_function("document.getElementById('usb-result').className === 'ok'", timeout=60_000)
    assert page.locator("#usb-result").inner_text() == "完成。可以拔出U盘了。"
    assert page.request.get(site.base + "/api/v1/status").json()["school_code"] == SCHOOL
