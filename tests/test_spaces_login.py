"""Logging in: staff passwords, student PIN / picture password, QR cards, lockout,
sessions, CSRF and logout everywhere; one test through the real server."""

from __future__ import annotations

import time

import httpx

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.spaces import const
from edge_agent.spaces.auth import hash_pin, hash_secret, verify_secret
from edge_agent.spaces.login_key import load_or_create
from edge_agent.spaces.people import get_person
from edge_agent.spaces.sessions import create_session, lookup_session

from fixtures.common import PASSWORD
from fixtures.spaces import build_world

XRW = {"X-Requested-With": "XMLHttpRequest"}


def _student_login(client, w, pin, role="student", headers=XRW, **env):
    return client.post("/api/v1/login/student", json={"class_id": w.ids["class_a"], "person_id": w.ids[role], "pin": pin},
                       headers=headers, **env)


def test_passwords_are_argon2id_and_pins_keyed_hashes_never_plain(world):
    rows = world.db.execute("select secret_kind, secret_hash from people where secret_hash != ''").fetchall()
    assert {k for k, _ in rows} == {"password", "pin"}
    assert all(h.startswith("$argon2id$") for k, h in rows if k == "password")
    assert all(h.startswith("$hmac-sha256$") for k, h in rows if k == "pin")
    assert len({h for k, h in rows if k == "pin"}) == 3  # salted: equal PINs would still differ
    assert world.pins["student"] not in "".join(h for _, h in rows)
    key_file = world.appliance.data_dir / "keys" / "login.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32


def test_default_kdf_cost_is_memory_hard_and_pin_hashes_need_the_device_key(tmp_path):
    staff = hash_secret("x" * 10, staff=True)
    assert "m=65536,t=2" in staff and verify_secret(staff, "x" * 10) and not verify_secret(staff, "x" * 11)
    key = load_or_create(tmp_path / "keys" / "login.key")
    pin = hash_pin("1234", key)
    assert verify_secret(pin, "1234", key) and not verify_secret(pin, "1235", key)
    assert not verify_secret(pin, "1234", b"k" * 32) and not verify_secret(pin, "1234")  # another device's key, none
    assert load_or_create(tmp_path / "keys" / "login.key") == key  # made once


def test_an_old_argon2_pin_still_logs_in_once_and_becomes_a_keyed_hash(world, client):
    world.db.execute("update people set secret_hash = ? where id = ?", [hash_secret("4321", staff=False), world.ids["student"]])
    assert _student_login(client, world, "4321").status_code == 200
    stored = world.db.execute("select secret_hash from people where id = ?", [world.ids["student"]]).fetchone()[0]
    assert stored.startswith("$hmac-sha256$")
    assert _student_login(client, world, "4321").status_code == 200


def test_student_logs_in_with_class_name_and_pin(world, client):
    r = client.get(f"/api/v1/login/classes/{world.ids['class_a']}/students")
    assert {s["name"] for s in r.json["students"]} == {"王小明", "李小红"}
    r = _student_login(client, world, world.pins["student"])
    assert r.status_code == 200 and r.json["person"]["name"] == "王小明"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/api/v1/me/home").json["person"]["id"] == world.ids["student"]
    assert world.db.execute("select count(*) from journal where verb = 'logged_in' and actor = ?",
                            [f"person:{world.ids['student']}"]).fetchone()[0] == 1


def test_student_in_another_class_cannot_log_in_through_this_class(world, client):
    r = client.post("/api/v1/login/student", json={"class_id": world.ids["class_a"], "person_id": world.ids["other_student"],
                                                    "pin": world.pins["other_student"]}, headers=XRW)
    assert r.status_code == 401


def test_picture_password_login(world, client):
    r = world.call("teacher", "POST", f"/api/v1/people/{world.ids['student']}/reset-pin", {"kind": "picture"})
    pictures = r.json["pictures"]
    assert len(pictures) == 3 and all(p in const.PICTURES for p in pictures)
    r = client.post("/api/v1/login/student", json={"class_id": world.ids["class_a"], "person_id": world.ids["student"],
                                                    "pictures": pictures}, headers=XRW)
    assert r.status_code == 200
    # the old PIN no longer works
    assert _student_login(client, world, world.pins["student"]).status_code == 401


def test_five_wrong_pins_lock_the_account_even_for_the_right_pin(world, client):
    wrong = "0000" if world.pins["student"] != "0000" else "1111"
    for _ in range(const.ACCOUNT_MAX_FAILURES):
        r = _student_login(client, world, wrong)
        assert r.status_code == 401 and "再试" in r.json["error"]["message"]
    r = _student_login(client, world, world.pins["student"])
    assert r.status_code == 429 and r.json["error"]["details"]["retry_after_s"] > 0
    # persisted in SQLite: a new app on the same data folder still refuses
    from edge_agent.app import create_app
    other = create_app(world.appliance.config, appliance=world.appliance).test_client()
    assert _student_login(other, world, world.pins["student"]).status_code == 429
    # the other student is not locked; the teacher's reset unlocks
    assert _student_login(client, world, world.pins["student2"], role="student2").status_code == 200
    new_pin = world.call("teacher", "POST", f"/api/v1/people/{world.ids['student']}/reset-pin", {}).json["pin"]
    assert _student_login(client, world, new_pin).status_code == 200


def test_lock_expires_after_the_lock_time(world, client, monkeypatch):
    for _ in range(const.ACCOUNT_MAX_FAILURES):
        _student_login(client, world, "xxxx")
    assert _student_login(client, world, world.pins["student"]).status_code == 429
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + const.ACCOUNT_LOCK_S + 1)
    assert _student_login(client, world, world.pins["student"]).status_code == 200


def test_one_client_guessing_many_accounts_is_locked(world, client, monkeypatch):
    monkeypatch.setattr(const, "CLIENT_MAX_FAILURES", 4)
    env = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    for role in ("student", "student2", "student", "student2"):
        assert _student_login(client, world, "9999x", role=role, **env).status_code == 401
    r = _student_login(client, world, world.pins["student2"], role="student2", **env)
    assert r.status_code == 429
    # another tablet is fine
    assert _student_login(client, world, world.pins["student2"], role="student2",
                          environ_base={"REMOTE_ADDR": "10.1.2.4"}).status_code == 200


def test_staff_login_wrong_password_and_unknown_number_look_alike(world, client):
    a = client.post("/api/v1/login/staff", json={"number": "t001", "password": "nope-nope"}, headers=XRW)
    b = client.post("/api/v1/login/staff", json={"number": "t999", "password": "nope-nope"}, headers=XRW)
    assert a.status_code == b.status_code == 401 and a.json == b.json
    r = client.post("/api/v1/login/staff", json={"number": "t001", "password": PASSWORD}, headers=XRW)
    assert r.status_code == 200 and r.json["person"]["roles"] == ["teacher"]


def test_csrf_rule_for_the_json_api(world, client):
    # a login without the custom header is refused (a cross-site form cannot add it)
    r = _student_login(client, world, world.pins["student"], headers={})
    assert r.status_code == 403 and r.json["error"]["code"] == "csrf"
    r = _student_login(client, world, world.pins["student"])
    csrf = r.json["csrf_token"]
    assert client.get("/api/v1/session").json["csrf_token"] == csrf
    # with a session cookie: the session's token is required on every state change
    assert client.put("/api/v1/progress/vid-1", json={"percent": 10}).status_code == 403
    assert client.put("/api/v1/progress/vid-1", json={"percent": 10}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.put("/api/v1/progress/vid-1", json={"percent": 10}, headers=XRW).status_code == 403
    assert world.db.execute("select count(*) from progress where person_id = ?", [world.ids["student"]]).fetchone()[0] == 0
    assert client.put("/api/v1/progress/vid-1", json={"percent": 10}, headers={"X-CSRF-Token": csrf}).status_code == 200
    # reads need no token
    assert client.get("/api/v1/me/home").status_code == 200


def test_logout_everywhere_ends_every_session_of_that_person(world, client):
    tablet_a = create_session(world.db, get_person(world.db, world.ids["student"]), "a")
    tablet_b = create_session(world.db, get_person(world.db, world.ids["student"]), "b")
    teacher = create_session(world.db, get_person(world.db, world.ids["teacher"]), "c")
    bare = client.application.test_client(use_cookies=False)
    r = bare.post("/api/v1/logout/everywhere", headers={"Cookie": f"{const.SESSION_COOKIE}={tablet_a[0]}", "X-CSRF-Token": tablet_a[1]})
    assert r.status_code == 200 and r.json["sessions_ended"] >= 2
    assert lookup_session(world.db, tablet_a[0]) is None and lookup_session(world.db, tablet_b[0]) is None
    assert lookup_session(world.db, teacher[0]) is not None


def test_sessions_expire(world):
    student = get_person(world.db, world.ids["student"])
    teacher = get_person(world.db, world.ids["teacher"])
    now = time.time()
    token, _ = create_session(world.db, student, "x", now=now)
    assert lookup_session(world.db, token, now=now + const.STUDENT_SESSION_S - 60) is not None
    assert lookup_session(world.db, token, now=now + const.STUDENT_SESSION_S + 1) is None
    token, _ = create_session(world.db, teacher, "x", now=now)
    assert lookup_session(world.db, token, now=now + const.STAFF_IDLE_S + 1) is None  # idle
    token, _ = create_session(world.db, teacher, "x", now=now)
    t = now
    while t < now + const.STAFF_ABSOLUTE_S - const.STAFF_IDLE_S:
        t += const.STAFF_IDLE_S - 60
        assert lookup_session(world.db, token, now=t) is not None  # kept alive by use
    assert lookup_session(world.db, token, now=now + const.STAFF_ABSOLUTE_S + 1) is None  # absolute


def test_qr_cards_log_in_with_one_scan_and_reprinting_revokes(world, client):
    r = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/qr-cards")
    cards = {c["person_id"]: c for c in r.json["cards"]}
    assert set(cards) == {world.ids["student"], world.ids["student2"]}
    card = cards[world.ids["student"]]
    assert card["svg"].startswith("<svg") and "/login/card#t=" in card["url"]
    token = card["url"].split("#t=")[1]
    r = client.post("/api/v1/login/card", json={"token": token}, headers=XRW)
    assert r.status_code == 200 and r.json["person"]["id"] == world.ids["student"]
    html = world.call("teacher", "POST", f"/api/v1/classes/{world.ids['class_a']}/qr-cards?format=html")
    assert html.mimetype == "text/html" and "王小明" in html.get_data(as_text=True)
    r = client.post("/api/v1/login/card", json={"token": token}, headers=XRW)
    assert r.status_code == 401 and "重新打印" in r.json["error"]["message"]


def test_transferred_out_student_cannot_log_in(world, client):
    from edge_agent.spaces.roster_apply import apply_roster_change
    from fixtures.spaces import student_number
    token = world.session("student")[0]
    apply_roster_change(world.db, {"kind": "transfer_out", "number": student_number(1)})
    assert _student_login(client, world, world.pins["student"]).status_code == 401
    assert lookup_session(world.db, token) is None


def test_real_server_cookie_login_and_csrf(tmp_path, serve_edge, fast_kdf):
    data = tmp_path / "edge"
    appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False}))
    try:
        from edge_agent.app import create_app
        w = build_world(appliance, create_app(appliance.config, appliance=appliance).test_client())
        ids, pin = w.ids, w.pins["student"]
    finally:
        appliance.close()
    server = serve_edge(data)
    with httpx.Client(base_url=server.base, timeout=10) as http:
        r = http.post("/api/v1/login/student", json={"class_id": ids["class_a"], "person_id": ids["student"], "pin": pin}, headers=XRW)
        assert r.status_code == 200, r.text
        assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
        csrf = http.get("/api/v1/session").json()["csrf_token"]
        assert http.put("/api/v1/progress/vid-1", json={"percent": 50}).status_code == 403
        assert http.put("/api/v1/progress/vid-1", json={"percent": 50}, headers={"X-CSRF-Token": csrf}).status_code == 200
        home = http.get("/api/v1/me/home").json()
        assert home["recent"][0]["percent"] == 50
        assert http.post("/api/v1/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        assert http.get("/api/v1/me/home").status_code == 401


def test_parent_gets_a_first_password_from_their_childs_teacher_and_logs_in_with_their_phone(world, client):
    parent = world.ids["parent"]
    assert world.call("other_teacher", "POST", f"/api/v1/people/{parent}/reset-password").status_code == 403
    assert world.call("teacher", "POST", f"/api/v1/people/{world.ids['teacher']}/reset-password").status_code == 403
    r = world.call("teacher", "POST", f"/api/v1/people/{parent}/reset-password")
    assert r.status_code == 200 and r.json["must_change"] is True
    login = client.post("/api/v1/login/staff", json={"number": "13800000001", "password": r.json["password"]}, headers=XRW)
    assert login.status_code == 200 and login.json["must_change"] is True
    assert client.get(f"/api/v1/students/{world.ids['student']}/home").status_code == 403  # change it first
    client.post("/api/v1/password", json={"old": r.json["password"], "new": "parent-pass-42"},
                headers={"X-CSRF-Token": login.json["csrf_token"]})
    assert client.get(f"/api/v1/students/{world.ids['student']}/home").status_code == 200
    assert client.get(f"/api/v1/students/{world.ids['other_student']}/home").status_code == 403


def test_a_login_leaves_the_connection_syncing_every_commit(world, client):
    # the reservation commits without a disk sync (throttle._written_not_synced); the setting comes back
    assert _student_login(client, world, world.pins["student"]).status_code == 200
    assert _student_login(client, world, "xxxx").status_code == 401
    assert world.db.execute("pragma synchronous").fetchone()[0] == 2  # FULL


def test_picture_passwords_lock_like_pins(world, client):
    pictures = world.call("teacher", "POST", f"/api/v1/people/{world.ids['student']}/reset-pin", {"kind": "picture"}).json["pictures"]
    wrong = [p for p in const.PICTURES if p != pictures[0]][:1] + pictures[1:]

    def login(chosen):
        return client.post("/api/v1/login/student", json={"class_id": world.ids["class_a"], "person_id": world.ids["student"],
                                                           "pictures": chosen}, headers=XRW)

    for _ in range(const.ACCOUNT_MAX_FAILURES):
        assert login(wrong).status_code == 401
    r = login(pictures)
    assert r.status_code == 429 and r.headers["Retry-After"] == str(r.json["error"]["details"]["retry_after_s"])
    assert world.db.execute("select count(*) from sessions where person_id = ?", [world.ids["student"]]).fetchone()[0] == 0
