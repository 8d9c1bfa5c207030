"""Login throttling under parallel requests, against the real served appliance: the
app under gunicorn (its documented entry ``edge_agent.wsgi``, 64 threads), as it
runs behind the front - on a loopback TCP port, so that real parallel requests
come from several loopback source addresses (127.0.0.2, 127.0.0.3, ...), or on a
unix socket with ``X-Real-IP``, as the nginx front sends it. The front's own
per-client rate limit is not in the way here: what is tested is that the app
holds by itself. Lock lengths, budgets and the argon2 cap are the production ones."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.spaces import const
from edge_agent.spaces.auth import hash_secret
from edge_agent.spaces.login import reset_student_secret
from edge_agent.spaces.people import find_by_number
from edge_agent.spaces.roster_apply import import_roster
from hub_sync.core.processes import START_TIMEOUT_S, SupervisedProcess, free_port, wait_until
from hub_sync.core.tls import client_tls

from fixtures.common import REPO
from fixtures.spaces import roster_csv, student_number

XRW = {"X-Requested-With": "XMLHttpRequest"}
CLASS = "三年级(2)班"
STUDENTS, STAFF = 40, 60
PASSWORD = "teacher-pass-2024"


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    """A data folder: one class of 40 students with known PINs, 60 teachers whose
    passwords are argon2id hashes with the production costs."""
    data = tmp_path_factory.mktemp("throttle") / "edge"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(const, "STAFF_KDF_MEMORY_KIB", 64)  # the roster's generated first passwords: cheap, replaced below
        mp.setattr(const, "STAFF_KDF_TIME_COST", 1)
        appliance = Appliance.open(EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False}))
        try:
            lines = [f"学生{n},{student_number(n)},,男,三年级,{CLASS},学生," for n in range(1, STUDENTS + 1)]
            lines += [f"老师{n},,T{n:04d},女,,{CLASS},教师," for n in range(1, STAFF + 1)]
            import_roster(appliance.db, roster_csv(lines))
            db = appliance.db
            teacher = find_by_number(db, "T0001")
            students = [find_by_number(db, student_number(n)) for n in range(1, STUDENTS + 1)]
            pins = {s.id: reset_student_secret(db, teacher, s)["pin"] for s in students}
            class_id = db.execute("select id from classes where name = ?", [CLASS]).fetchone()[0]
        finally:
            appliance.close()
    real = hash_secret(PASSWORD, staff=True)  # production costs, made once
    assert f"m={const.STAFF_KDF_MEMORY_KIB}" in real
    with sqlite3.connect(data / "edge.db") as conn:
        conn.execute("update people set secret_kind = 'password', secret_hash = ?, must_change = 0 where roles = 'teacher'", [real])
    return {"data": data, "class_id": class_id, "pins": pins, "students": [s.id for s in students],
            "staff": [f"T{n:04d}" for n in range(1, STAFF + 1)]}


@pytest.fixture
def db(school):
    """The served appliance's database, read (and the clock's effects simulated) by the test."""
    conn = sqlite3.connect(school["data"] / "edge.db", isolation_level=None, timeout=10)
    with conn:
        conn.execute("delete from login_failures")
        conn.execute("delete from sessions")
    settings = school["data"] / "settings.json"
    settings.unlink(missing_ok=True)
    yield conn
    settings.unlink(missing_ok=True)
    conn.close()


class Served:
    """The app under gunicorn: ``base`` for TCP, or ``socket`` (a unix socket, as behind the front)."""

    def __init__(self, data: Path, unix_socket: Path | None) -> None:
        self.socket = unix_socket
        bind = f"unix:{unix_socket}" if unix_socket else f"127.0.0.1:{free_port()}"
        self.base = "http://front" if unix_socket else f"http://{bind}"
        self.proc = SupervisedProcess([sys.executable, "-m", "gunicorn", "-b", bind, "--workers", "1", "--threads", "64",
                                       "--graceful-timeout", "2", "edge_agent.wsgi:app_from_env()"],
                                      cwd=REPO, env={**os.environ, "SCHOOL_EDGE_DATA": str(data)})
        try:
            wait_until(self._answers, START_TIMEOUT_S, "the app to answer")
        except BaseException:
            self.proc.stop()
            raise AssertionError(f"the app did not start:\n{self.proc.output()}") from None

    def _answers(self) -> bool:
        if not self.proc.running():
            raise AssertionError(f"gunicorn exited:\n{self.proc.output()}")
        if self.socket:  # httpcore leaks the socket of a unix connection that fails: probe it first
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(str(self.socket))
                except OSError:
                    return False
        try:
            with self.client() as http:
                http.get("/api/v1/status", timeout=1)
            return True
        except httpx.TransportError:
            return False

    def client(self, local_address: str | None = None, **kw) -> httpx.Client:
        transport = httpx.HTTPTransport(uds=str(self.socket), verify=client_tls()) if self.socket else \
            httpx.HTTPTransport(local_address=local_address, verify=client_tls())
        return httpx.Client(base_url=self.base, timeout=60, transport=transport, **kw)


@pytest.fixture
def served(school, db, tmp_path):
    """Start the app on the school's data folder; ``behind_front=True``: on a unix socket,
    with ``trust_front_header`` on, as the nginx front runs it."""
    started: list[Served] = []

    def start(behind_front: bool = False) -> Served:
        if behind_front:
            (school["data"] / "settings.json").write_text(json.dumps({"trust_front_header": True}))
        started.append(Served(school["data"], tmp_path / "app.sock" if behind_front else None))
        return started[-1]

    yield start
    for server in started:
        server.proc.stop()


def tablet(server: Served, n: int) -> httpx.Client:
    """An HTTP client whose connections come from loopback address 127.0.<n // 250>.<n % 250 + 2>."""
    return server.client(f"127.0.{n // 250}.{n % 250 + 2}", headers=XRW)


def student_body(school, person_id: int, pin: str) -> dict:
    return {"class_id": school["class_id"], "person_id": person_id, "pin": pin}


def wrong_pins(right: str, count: int) -> list[str]:
    return [p for p in (f"{n:04d}" for n in range(10_000)) if p != right][:count]


def key_row(db, key: str) -> dict:
    row = db.execute("select failures, locked_until, lock_level, wrong_total from login_failures where key = ?", [key]).fetchone()
    return dict(zip(("failures", "locked_until", "lock_level", "wrong_total"), row or (0, 0, 0, 0)))


def snapshot(db, person_id: int) -> tuple:
    """What a refused login must leave as it was."""
    return (db.execute("select secret_hash from people where id = ?", [person_id]).fetchone()[0],
            db.execute("select count(*) from sessions where person_id = ?", [person_id]).fetchone()[0],
            db.execute("select count(*) from journal where verb = 'logged_in' and actor = ?", [f"person:{person_id}"]).fetchone()[0])


def in_parallel(jobs: list, workers: int = 100) -> list:
    """Run the callables at once (behind a barrier); their results in order."""
    barrier = threading.Barrier(min(workers, len(jobs)))

    def run(job):
        try:
            barrier.wait(timeout=30)
        except threading.BrokenBarrierError:
            pass  # the jobs beyond the first ``workers`` start as threads free up
        return job()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


def assert_locked(r: httpx.Response, device: bool = False) -> int:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "locked" and "锁定" in error["message"] and "locked" in error["message_en"]
    assert ("这台设备" in error["message"]) == device
    wait = int(r.headers["Retry-After"])
    assert wait == error["details"]["retry_after_s"] > 0
    return wait


def test_300_parallel_wrong_pins_check_at_most_the_budget_and_the_right_pin_is_then_refused(school, db, served):
    server = served()
    victim, right = school["students"][0], school["pins"][school["students"][0]]
    before = snapshot(db, victim)
    tablets = [tablet(server, n) for n in range(10)]  # ten addresses: the account's budget is what stops them
    try:
        guesses = wrong_pins(right, 300)
        jobs = [lambda n=n: tablets[n % 10].post("/api/v1/login/student", json=student_body(school, victim, guesses[n]))
                for n in range(300)]
        answers = in_parallel(jobs)
        checked = [r for r in answers if r.status_code == 401]
        assert len(checked) <= 10 and len(checked) == const.ACCOUNT_MAX_FAILURES
        assert all(r.json()["error"]["code"] == "auth_required" for r in checked)
        waits = [assert_locked(r) for r in answers if r.status_code != 401]
        assert len(waits) == 300 - len(checked) and max(waits) <= const.ACCOUNT_LOCK_S + 1
        row = key_row(db, f"acct:{victim}")
        assert row["wrong_total"] == len(checked) and row["lock_level"] == 1
        assert row["locked_until"] > time.time() + const.ACCOUNT_LOCK_S - 30
        # the right PIN is refused while locked, and the refusal changes nothing
        r = tablets[0].post("/api/v1/login/student", json=student_body(school, victim, right))
        assert_locked(r)
        assert key_row(db, f"acct:{victim}") == row and snapshot(db, victim) == before
        # another pupil of the class is not affected
        other = school["students"][1]
        r = tablets[1].post("/api/v1/login/student", json=student_body(school, other, school["pins"][other]))
        assert r.status_code == 200, r.text
    finally:
        for t in tablets:
            t.close()


def test_the_lock_grows_each_time_and_is_never_lowered(school, db, served):
    server = served()
    victim, right = school["students"][2], school["pins"][school["students"][2]]
    guesses = wrong_pins(right, 40)
    with tablet(server, 20) as http:
        waits = []
        for round_ in range(3):
            for n in range(const.ACCOUNT_MAX_FAILURES):
                r = http.post("/api/v1/login/student", json=student_body(school, victim, guesses[round_ * 10 + n]))
                assert r.status_code == 401, r.text
            locked_until = key_row(db, f"acct:{victim}")["locked_until"]
            # more wrong guesses, and the right one, during the lock: refused, the lock not moved
            for pin in (guesses[round_ * 10 + 9], right):
                waits.append(assert_locked(http.post("/api/v1/login/student", json=student_body(school, victim, pin))))
                assert key_row(db, f"acct:{victim}")["locked_until"] == locked_until
            with db:  # the lock's time passes
                db.execute("update login_failures set locked_until = ? where key = ?", [time.time() - 1, f"acct:{victim}"])
        firsts = waits[::2]
        assert [round(w / const.ACCOUNT_LOCK_S) for w in firsts] == [1, 2, 4], firsts
        assert key_row(db, f"acct:{victim}")["wrong_total"] == 3 * const.ACCOUNT_MAX_FAILURES
        # after the last lock, the right PIN logs in again
        r = http.post("/api/v1/login/student", json=student_body(school, victim, right))
        assert r.status_code == 200, r.text


def test_one_address_guessing_many_accounts_is_locked_and_a_spoofed_header_does_not_help(school, db, served):
    server = served()
    attacker, classmate = tablet(server, 30), tablet(server, 31)
    try:
        targets = school["students"][3:11]  # 8 accounts x 4 guesses: each under its own budget, 32 over the address's
        jobs = [lambda pid=pid, pin=pin: attacker.post("/api/v1/login/student", json=student_body(school, pid, pin))
                for pid in targets for pin in wrong_pins(school["pins"][pid], 4)]
        answers = in_parallel(jobs)
        assert sum(r.status_code == 401 for r in answers) == const.CLIENT_MAX_FAILURES
        for r in answers:
            if r.status_code != 401:
                assert_locked(r, device=True)
        assert key_row(db, "client:127.0.0.32")["wrong_total"] == const.CLIENT_MAX_FAILURES
        assert sum(key_row(db, f"acct:{pid}")["wrong_total"] for pid in targets) == const.CLIENT_MAX_FAILURES
        fresh = school["students"][11]
        before = snapshot(db, fresh)
        r = attacker.post("/api/v1/login/student", json=student_body(school, fresh, school["pins"][fresh]))
        assert_locked(r, device=True)
        # X-Real-IP is not believed from a LAN peer while no trusted front is configured
        r = attacker.post("/api/v1/login/student", json=student_body(school, fresh, school["pins"][fresh]),
                          headers={"X-Real-IP": "10.20.30.40"})
        assert_locked(r, device=True)
        assert snapshot(db, fresh) == before and key_row(db, "client:10.20.30.40")["failures"] == 0
        # the tablet next to it logs in
        r = classmate.post("/api/v1/login/student", json=student_body(school, fresh, school["pins"][fresh]))
        assert r.status_code == 200, r.text
    finally:
        attacker.close()
        classmate.close()


def test_behind_the_trusted_front_each_lan_client_is_throttled_by_its_own_address(school, db, served):
    server = served(behind_front=True)
    with server.client(headers=XRW) as front:  # what nginx does: the unix socket, X-Real-IP = the tablet's address
        targets = school["students"][12:20]
        jobs = [lambda pid=pid, pin=pin: front.post("/api/v1/login/student", json=student_body(school, pid, pin),
                                                    headers={"X-Real-IP": "10.20.0.7"})
                for pid in targets for pin in wrong_pins(school["pins"][pid], 4)]
        answers = in_parallel(jobs)
        assert sum(r.status_code == 401 for r in answers) == const.CLIENT_MAX_FAILURES
        assert key_row(db, "client:10.20.0.7")["wrong_total"] == const.CLIENT_MAX_FAILURES
        assert key_row(db, "client:unknown")["failures"] == 0  # the front itself is never blamed
        pupil = school["students"][20]
        assert_locked(front.post("/api/v1/login/student", json=student_body(school, pupil, school["pins"][pupil]),
                                 headers={"X-Real-IP": "10.20.0.7"}), device=True)
        r = front.post("/api/v1/login/student", json=student_body(school, pupil, school["pins"][pupil]),
                       headers={"X-Real-IP": "10.20.0.8"})
        assert r.status_code == 200, r.text
        session = db.execute("select client from sessions where person_id = ?", [pupil]).fetchone()
        assert session == ("10.20.0.8",)


def _staff_login(http: httpx.Client, number: str, password: str) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = http.post("/api/v1/login/staff", json={"number": number, "password": password})
    return time.perf_counter() - t0, r


def test_an_unknown_staff_number_answers_as_late_as_a_known_one(school, db, served):
    server = served()
    known, unknown = [], []
    with tablet(server, 40) as http:
        _staff_login(http, "X9999", "warm-up")  # the dummy hash is made on first use
        _staff_login(http, school["staff"][-1], "warm-up")
        for n in range(12):  # interleaved, so that a busy moment of the machine hits both
            t, r = _staff_login(http, school["staff"][n // 4], f"wrong-{n}")
            assert r.status_code == 401
            known.append(t)
            t, r2 = _staff_login(http, f"X{n // 4:04d}", f"wrong-{n}")
            assert r2.status_code == 401 and r2.json() == r.json()
            unknown.append(t)
    k, u = statistics.median(known), statistics.median(unknown)
    assert 0.6 < u / k < 1.6, (k, u)
    # unknown numbers are throttled like known ones: the fifth guess was checked, the sixth would be refused
    assert key_row(db, "number:X0000")["failures"] == key_row(db, f"acct:{find_id(db, school['staff'][0])}")["failures"] == 4


def find_id(db, number: str) -> int:
    return db.execute("select id from people where number = ?", [number]).fetchone()[0]


def test_at_most_two_argon2_checks_at_once_the_rest_get_503_with_retry_after(school, db, served):
    server = served()
    tablets = [tablet(server, 100 + n) for n in range(STAFF)]
    status_times = []
    try:
        def watch_status():
            with server.client() as http:
                for _ in range(5):
                    t0 = time.perf_counter()
                    assert http.get("/api/v1/status").status_code == 200
                    status_times.append(time.perf_counter() - t0)

        jobs = [lambda n=n: tablets[n].post("/api/v1/login/staff", json={"number": school["staff"][n], "password": PASSWORD})
                for n in range(STAFF)]
        answers = in_parallel([*jobs, watch_status], workers=STAFF + 1)[:STAFF]
        busy = [r for r in answers if r.status_code == 503]
        assert busy, "60 staff logins at once, 2 argon2 checks at a time: some must wait too long"
        assert all(r.status_code in (200, 503) for r in answers), [r.status_code for r in answers]
        for r in busy:
            error = r.json()["error"]
            assert error["code"] == "busy" and "再试" in error["message"] and "try again" in error["message_en"]
            assert int(r.headers["Retry-After"]) == error["details"]["retry_after_s"] == const.ARGON2_BUSY_RETRY_S
        # a refused login left nothing behind: no session, its attempt given back
        logged_in = sum(r.status_code == 200 for r in answers)
        assert db.execute("select count(*) from sessions").fetchone()[0] == logged_in
        assert db.execute("select coalesce(sum(failures), 0), coalesce(sum(wrong_total), 0) from login_failures").fetchone() == (0, 0)
        assert max(status_times) < 2.0, status_times  # the appliance kept serving meanwhile
        # and the refused ones log in when they come back
        n = answers.index(busy[0])
        assert _staff_login(tablets[n], school["staff"][n], PASSWORD)[1].status_code == 200
    finally:
        for t in tablets:
            t.close()


def _csrf(r: httpx.Response) -> dict:
    return {"X-CSRF-Token": r.json()["csrf_token"]}


def test_a_new_pin_new_password_or_new_cards_end_that_persons_other_sessions(school, db, served):
    server = served()
    pupil = school["students"][30]
    a, b, teacher, teacher2 = (tablet(server, n) for n in (60, 61, 62, 63))
    try:
        for t in (a, b):
            assert t.post("/api/v1/login/student", json=student_body(school, pupil, school["pins"][pupil])).status_code == 200
        login = teacher.post("/api/v1/login/staff", json={"number": "T0050", "password": PASSWORD})
        assert login.status_code == 200
        assert teacher2.post("/api/v1/login/staff", json={"number": "T0050", "password": PASSWORD}).status_code == 200
        # a PIN reset ends both of the pupil's sessions
        r = teacher.post(f"/api/v1/people/{pupil}/reset-pin", json={}, headers=_csrf(login))
        assert r.status_code == 200, r.text
        new_pin = r.json()["pin"]
        assert a.get("/api/v1/me/home").status_code == b.get("/api/v1/me/home").status_code == 401
        assert teacher.get("/api/v1/session").json()["logged_in"] and teacher2.get("/api/v1/session").json()["logged_in"]
        # new login cards end the sessions of the pupils they are for
        assert a.post("/api/v1/login/student", json=student_body(school, pupil, new_pin)).status_code == 200
        assert teacher.post(f"/api/v1/classes/{school['class_id']}/qr-cards", headers=_csrf(login)).status_code == 200
        assert a.get("/api/v1/me/home").status_code == 401
        # a wrong current password, or a too short new one: refused, nothing changed, no session ended
        teacher_id = find_id(db, "T0050")
        before = (db.execute("select secret_hash from people where id = ?", [teacher_id]).fetchone(),
                  db.execute("select count(*) from sessions where person_id = ?", [teacher_id]).fetchone())
        r = teacher.post("/api/v1/password", json={"old": "not-it-at-all", "new": "brand-new-pass-1"}, headers=_csrf(login))
        assert r.status_code == 401 and r.json()["error"]["message"] == "原密码不对"
        r = teacher.post("/api/v1/password", json={"old": PASSWORD, "new": "short"}, headers=_csrf(login))
        assert r.status_code == 400 and "至少" in r.json()["error"]["message"]
        assert (db.execute("select secret_hash from people where id = ?", [teacher_id]).fetchone(),
                db.execute("select count(*) from sessions where person_id = ?", [teacher_id]).fetchone()) == before
        # changing one's password ends one's other sessions, not this one
        r = teacher.post("/api/v1/password", json={"old": PASSWORD, "new": "brand-new-pass-1"}, headers=_csrf(login))
        assert r.status_code == 200 and r.json()["sessions_ended"] == 1
        assert teacher2.get("/api/v1/session").json() == {"logged_in": False}
        assert teacher.get("/api/v1/session").json()["logged_in"]
    finally:
        for t in (a, b, teacher, teacher2):
            t.close()


@pytest.mark.parametrize("trust, remote, header, expected", [
    (False, "10.1.2.3", "10.9.9.9", "10.1.2.3"),     # no front configured: the header is ignored
    (True, "10.1.2.3", "10.9.9.9", "10.1.2.3"),      # a LAN peer cannot claim another address
    (True, "", "10.9.9.9", "10.9.9.9"),              # from the front's unix socket
    (True, "127.0.0.1", "10.9.9.9", "10.9.9.9"),     # from the front on loopback
    (True, "::1", "fe80::1", "fe80::1"),
    (True, "", "not-an-address", "unknown"),         # a front that sent no usable address
    (True, "127.0.0.1", "", "127.0.0.1"),
    (False, "", "10.9.9.9", "unknown"),
])
def test_the_client_address_comes_from_x_real_ip_only_through_the_trusted_front(trust, remote, header, expected):
    from flask import Flask, request

    from edge_agent.spaces.client_address import client_address

    app = Flask(__name__)
    app.extensions["edge_config"] = EdgeConfig(trust_front_header=trust)
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": remote}, headers={"X-Real-IP": header} if header else {}):
        assert client_address(request) == expected


def test_the_front_header_is_not_trusted_by_default():
    assert EdgeConfig().trust_front_header is False
