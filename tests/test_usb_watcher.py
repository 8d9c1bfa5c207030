"""The appliance notices a stick, shows the technician what it would do, applies on confirmation."""

import json

import pytest

from fixtures.common import SCHOOL
from fixtures.usb import PASSPHRASE, roster_bytes

from edge_agent.spaces import const
from edge_agent.spaces.login import set_staff_password
from edge_agent.spaces.people import find_by_number
from edge_agent.wiring import create_served_app
from provisioning.watcher import PLANS_FILE, StickWatcher, find_sticks, read_plans
from hub_sync.core.processes import wait_until

ROSTER = roster_bytes(["姓名,学籍号,性别,年级,班级,角色",
                       "张三,G110101201501011234,男,一年级,一年级1班,学生",
                       "王老师,T001,女,,一年级1班,班主任",
                       "吴师傅,X001,男,,,技术员"])


@pytest.fixture
def mounted(usb_world, tmp_path):
    """A mount root holding the stick the way a desktop automounter does: <root>/<user>/<label>."""
    root = tmp_path / "media"
    label = root / "technician" / "KINGSTON"
    label.parent.mkdir(parents=True)
    usb_world.stick.rename(label)
    usb_world.stick = label
    (root / "other-disk").mkdir()  # a stick without school-edge is not ours
    (root / "loop").symlink_to(tmp_path)  # symlinks are not followed
    return root


def client_for(usb_world, app, roots, remote="127.0.0.1"):
    flask_app = create_served_app(app.config.replace(usb_mount_roots=str(roots)), appliance=app)
    return flask_app.test_client(), {"REMOTE_ADDR": remote}


def test_sticks_are_found_under_the_mount_roots(usb_world, mounted, tmp_path):
    usb_world.make()
    assert find_sticks(f"{mounted},{tmp_path / 'missing'}") == [usb_world.stick]
    assert find_sticks("") == []


def test_watcher_records_the_plan_when_a_stick_appears(usb_world, mounted):
    app = usb_world.appliance()
    watcher = StickWatcher(app, str(mounted), interval_s=0.05)
    assert watcher.poll() == [] and read_plans(app.data_dir) == []
    usb_world.make()
    [plan] = watcher.poll()
    assert plan["ok"] and plan["provision"]["school_code"] == SCHOOL
    assert any("trust the hub" in a for a in plan["actions"])
    assert read_plans(app.data_dir)[0]["stick"] == str(usb_world.stick)
    assert watcher.poll() is None  # nothing changed
    assert app.school_code == ""  # noticing never applies
    watcher.start()
    watcher.stop()


def test_plans_made_at_the_same_time_do_not_trip_over_each_other(usb_world, mounted):
    """The watcher and page requests plan the same stick at once; each uses its own scratch state."""
    import threading

    from provisioning.watcher import plan_for

    usb_world.make()
    app = usb_world.appliance()
    results, failures = [], []

    def plan_repeatedly():
        for _ in range(20):
            try:
                results.append(plan_for(app, usb_world.stick))
            except Exception as exc:  # noqa: BLE001  (the assertion below names it)
                failures.append(repr(exc))

    threads = [threading.Thread(target=plan_repeatedly) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(results) == 80 and all(r["ok"] and r["provision"]["school_code"] == SCHOOL for r in results)
    assert not list((app.data_dir / "usb").glob("scratch-*"))  # every scratch copy was removed
    assert app.school_code == ""


def test_watcher_shows_a_refusal_for_a_bad_stick(usb_world, mounted):
    usb_world.make(valid_days=-1)
    app = usb_world.appliance()
    [plan] = StickWatcher(app, str(mounted)).poll()
    assert not plan["ok"] and "expired" in plan["error"]["message_en"]
    stored = json.loads((app.data_dir / PLANS_FILE).read_text())
    assert stored["sticks"][0]["error"]["code"] == "bad_bundle"


def test_technician_page_api_plans_and_applies_on_an_unprovisioned_device(usb_world, mounted):
    usb_world.make(roster=ROSTER)
    app = usb_world.appliance()
    client, env = client_for(usb_world, app, mounted)
    listed = client.get("/api/v1/usb", environ_base=env).get_json()["sticks"]
    assert listed[0]["provision"]["needs_passphrase"]
    hdr = {const.LOGIN_HEADER: "fetch"}
    wrong = client.post("/api/v1/usb/apply", json={"stick": listed[0]["stick"], "passphrase": "nope nope nope"},
                        environ_base=env, headers=hdr)
    assert wrong.status_code == 403 and wrong.get_json()["error"]["code"] == "wrong_passphrase"
    assert app.school_code == ""
    elsewhere = client.post("/api/v1/usb/apply", json={"stick": "/etc", "passphrase": PASSPHRASE}, environ_base=env, headers=hdr)
    assert elsewhere.status_code == 400
    done = client.post("/api/v1/usb/apply", json={"stick": listed[0]["stick"], "passphrase": PASSPHRASE},
                       environ_base=env, headers=hdr)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["result"]["changed"] and app.school_code == SCHOOL


def test_unprovisioned_device_answers_only_its_own_screen(usb_world, mounted):
    usb_world.make()
    app = usb_world.appliance()
    client, env = client_for(usb_world, app, mounted, remote="192.0.2.7")
    r = client.get("/api/v1/usb", environ_base=env)
    assert r.status_code == 403


def test_after_provisioning_only_technicians_may_use_the_stick_api(usb_world, mounted):
    usb_world.make(roster=ROSTER)
    app = usb_world.appliance()
    from provisioning.usb_apply import apply_stick

    apply_stick(app, usb_world.stick, PASSPHRASE)
    for number in ("X001", "T001"):
        set_staff_password(app.db, find_by_number(app.db, number).id, "pass-word-123", must_change=False)
    client, env = client_for(usb_world, app, mounted)
    assert client.get("/api/v1/usb", environ_base=env).status_code == 401
    hdr = {const.LOGIN_HEADER: "fetch"}
    login = client.post("/api/v1/login/staff", json={"number": "T001", "password": "pass-word-123"}, headers=hdr,
                        environ_base=env)
    assert login.status_code == 200, login.get_json()
    assert client.get("/api/v1/usb", environ_base=env).status_code == 403  # a teacher
    client.post("/api/v1/logout", headers={const.CSRF_HEADER: login.get_json()["csrf_token"]}, environ_base=env)
    tech = client.post("/api/v1/login/staff", json={"number": "X001", "password": "pass-word-123"}, headers=hdr,
                       environ_base=env)
    assert tech.status_code == 200
    listed = client.get("/api/v1/usb", environ_base=env).get_json()["sticks"]
    assert any("export" in a for a in listed[0]["actions"])
    exported = client.post("/api/v1/usb/apply", json={"stick": listed[0]["stick"], "action": "export"},
                           headers={const.CSRF_HEADER: tech.get_json()["csrf_token"]}, environ_base=env)
    assert exported.status_code == 200 and exported.get_json()["result"]["batches"] >= 1


@pytest.mark.slow  # a real server and the watcher's poll: ~8 s
def test_running_appliance_notices_a_stick_plugged_in(usb_world, mounted, serve_edge):
    app = usb_world.appliance()
    data = app.data_dir
    app.close()
    (data / "settings.json").write_text(json.dumps({"usb_mount_roots": str(mounted)}))
    serve_edge(data)
    usb_world.make()  # plugged in while serving
    [plan] = wait_until(lambda: read_plans(data), 20, "the serving appliance to notice the stick")
    assert plan["ok"] and plan["provision"]["school_code"] == SCHOOL
