#!/usr/bin/env python3
"""Benchmark: learning spaces on one appliance, through the real server.

In one run, in a temporary folder:

1. builds a school with bulk inserts: 2,000 learners in 100 classes of 20,
   200 teachers (2 per class), 40 exercise sets and 60 videos, and a semester of
   activity: 60 assignments per class, answers to ~80% of them (two attempts for
   some), progress on ~50 resources per learner, 10 hand-ins per learner, 30
   announcements per class. Student PINs are keyed hashes under the data
   folder's login key and staff passwords argon2id hashes with the production
   costs, as the appliance makes them, so logins cost what they cost on a device;
2. starts ``school-edge edge serve`` (gunicorn, gthread) on a free loopback port;
3. 30 concurrent clients (httpx, one session each, a random pause of mean
   ``--think-ms`` between requests, as people reading a page): teachers reading
   their class's progress summary, then students reading their home data; p95.
   For information, the same 30 clients again with no pause (closed loop: the
   latency is then 30 / throughput of the box, about 2 cores shared with the
   load generator itself);
   and, for information, the 30 teachers again while one learner of each of their
   classes records progress (``PUT /api/v1/progress/<id>``, a random pause of mean
   ``--write-ms``): every write changes the class's summary, so these reads are
   mostly computed afresh rather than answered from the per-class cache;
4. login storm: the 40 students of one class (it is made 40 for this) log in
   with their PINs at random moments within the same 10 seconds; p95 of each
   login's latency;
5. login burst: the same 40 pupils, each on a tablet of its own (its own
   loopback address, 127.0.0.2 ...: the throttle counts per address), wait
   behind a barrier and log in at the same instant, each then opening the home
   page (``GET /student``) as the login page does; p95 of login + home page over
   ``--burst-rounds`` bursts (and, for information, of the login alone). The
   login throttle and the argon2 cap are in force, as on a device.

Prints a table, then last ``class_progress_p95_ms=<f> student_home_p95_ms=<f>
login_storm_p95_ms=<f> login_burst_p95_ms=<f>``. Goals: <= 100, <= 50, <= 1000
and <= 300 ms. About a minute.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from edge_agent.appliance import Appliance
from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.config import EdgeConfig
from edge_agent.demo.sample_library import exercise_set
from edge_agent.spaces.auth import hash_pin, hash_secret
from edge_agent.spaces.login_key import login_key
from edge_agent.spaces.people import get_person
from edge_agent.spaces.sessions import create_session
from hub_sync.core.sqlite_db import transaction
from local_server import free_port, start_edge, stop  # bench/ is the script's folder

CLASSES, PER_CLASS, TEACHERS_PER_CLASS = 100, 20, 2
STORM_CLASS_SIZE = 40
ASSIGNMENTS_PER_CLASS = 60
CLIENTS = 30
PIN = "2468"


def build(appliance: Appliance, seed: int) -> dict:
    """The school and its semester, by bulk inserts; returns ids the load needs."""
    rng = random.Random(seed)
    db = appliance.db
    now = time.time()
    start = now - 120 * 86400
    resources = []
    for n in range(40):
        raw = exercise_set(f"练习 {n}", "数学", n)
        blob = appliance.store.put_bytes(raw)
        resources.append(Resource(id=f"ex-{n}", title=f"练习 {n}", kind="exercise", subject="数学", grade="一年级",
                                  files=[ResourceFile("exercise.json", blob.sha256, len(raw), "application/json")]))
    video = appliance.store.put_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 64)
    for n in range(60):
        resources.append(Resource(id=f"vid-{n}", title=f"微课 {n}", kind="video", subject="语文", grade="一年级",
                                  files=[ResourceFile("v.mp4", video.sha256, 74, "video/mp4")]))
    appliance.catalogue.upsert_many(resources)
    key = login_key(db)                              # the data folder's, as the served appliance reads it
    staff_hash = hash_secret("bench-password", staff=True)
    classes, students, teachers = [], {}, {}
    with transaction(db):
        pid = 0
        for c in range(CLASSES):
            size = STORM_CLASS_SIZE if c == 0 else PER_CLASS
            cid = db.execute("insert into classes (name, grades, created_at, updated_at) values (?, '一年级', ?, ?)",
                             [f"{c // 10 + 1}年级({c % 10 + 1})班", now, now]).lastrowid
            classes.append(cid)
            rows = []
            for _ in range(size):
                pid += 1
                rows.append((f"G{110101201500000000 + pid:018d}", f"学生{pid}", "男", "一年级", "student", "pin",
                             hash_pin(PIN, key), now, now))
            db.conn.executemany("insert into people (number, name, gender, grade, roles, secret_kind, secret_hash, created_at, updated_at)"
                                " values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            ids = [r[0] for r in db.execute("select id from people where roles = 'student' order by id desc limit ?", [size])]
            students[cid] = ids
            db.conn.executemany("insert into class_members (class_id, person_id, role) values (?, ?, 'student')", [(cid, i) for i in ids])
            teachers[cid] = []
            for t in range(TEACHERS_PER_CLASS):
                tid = db.execute("insert into people (number, name, gender, roles, secret_kind, secret_hash, created_at, updated_at)"
                                 " values (?, ?, '女', 'teacher', 'password', ?, ?, ?)",
                                 [f"t{c:03d}{t}", f"老师{c}-{t}", staff_hash, now, now]).lastrowid
                teachers[cid].append(tid)
                db.execute("insert into class_members (class_id, person_id, role) values (?, ?, 'teacher')", [cid, tid])
        answers, progress, subs, ann = [], [], [], []
        uid = 0
        for cid in classes:
            for a in range(ASSIGNMENTS_PER_CLASS):
                rid = f"ex-{a % 40}" if a % 3 else f"vid-{a % 60}"
                kind = "exercise" if a % 3 else "resource"
                created = start + a * 2 * 86400
                aid = db.execute("insert into assignments (class_id, teacher_id, resource_id, title, kind, due_at, created_at)"
                                 " values (?, ?, ?, ?, ?, ?, ?)", [cid, teachers[cid][0], rid, f"作业 {a}", kind, created + 7 * 86400,
                                                                   created]).lastrowid
                for sid in students[cid]:
                    if kind == "exercise" and rng.random() < 0.8:
                        for attempt in range(1 + (rng.random() < 0.2)):
                            uid += 1
                            answers.append((f"ans-{uid}", aid, sid, attempt + 1, '{"q1":1}', float(rng.randint(0, 4)), 4.0,
                                            created + 3600 * (1 + attempt)))
                    if a % 6 == 0:
                        uid += 1
                        subs.append((f"sub-{uid}", aid, sid, "我的作业", "[]", created + 7200))
            for sid in students[cid]:
                for r in rng.sample(range(100), 50):
                    rid = f"ex-{r}" if r < 40 else f"vid-{r - 40}"
                    state = rng.choice(("in_progress", "completed"))
                    progress.append((sid, rid, state, rng.random() * 300, 100.0 if state == "completed" else rng.random() * 100,
                                     start + rng.random() * 120 * 86400))
            for m in range(30):
                ann.append(("announcement", teachers[cid][0], cid, "通知", f"第 {m} 条通知", start + m * 4 * 86400))
        db.conn.executemany("insert into answers (uid, assignment_id, person_id, attempt, answers, score, total, created_at)"
                            " values (?, ?, ?, ?, ?, ?, ?, ?)", answers)
        db.conn.executemany("insert into progress (person_id, resource_id, state, position, percent, updated_at) values (?, ?, ?, ?, ?, ?)",
                            progress)
        db.conn.executemany("insert into submissions (uid, assignment_id, person_id, text, files, created_at) values (?, ?, ?, ?, ?, ?)",
                            subs)
        db.conn.executemany("insert into messages (kind, sender_id, class_id, subject, body, created_at) values (?, ?, ?, ?, ?, ?)", ann)
    db.execute("analyze")
    counts = {t: db.execute(f"select count(*) from {t}").fetchone()[0]
              for t in ("people", "classes", "assignments", "answers", "progress", "submissions", "messages")}
    return {"classes": classes, "students": students, "teachers": teachers, "counts": counts}


def p95(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]


def run_clients(base: str, jobs: list[tuple[str, str]], seconds: float, think_s: float, seed: int) -> list[float]:
    """Each (cookie token, url) is one client doing GETs for ``seconds``, pausing a random
    0..2*think_s between them (0: a closed loop, as fast as it can); latencies in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors = []

    def client(token: str, url: str) -> None:
        mine = []
        pause = random.Random(f"{seed}{token}")
        with httpx.Client(base_url=base, cookies={"se_session": token}, timeout=30) as http:
            http.get(url)  # warm the connection
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                r = http.get(url)
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors.append(r.status_code)
                if think_s:
                    time.sleep(pause.random() * 2 * think_s)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    return latencies


def run_writers(base: str, jobs: list[tuple[str, str]], seconds: float, pause_s: float, seed: int) -> list[float]:
    """Each (cookie token, CSRF token) is a learner recording progress on videos for
    ``seconds``, pausing a random 0..2*pause_s between writes; latencies in ms."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    errors = []

    def learner(token: str, csrf: str) -> None:
        mine = []
        rng = random.Random(f"{seed}{token}")
        with httpx.Client(base_url=base, cookies={"se_session": token}, headers={"X-CSRF-Token": csrf}, timeout=30) as http:
            while time.monotonic() < deadline:
                time.sleep(rng.random() * 2 * pause_s)
                body = {"state": "in_progress", "percent": rng.random() * 100, "position": rng.random() * 300}
                t0 = time.perf_counter()
                r = http.put(f"/api/v1/progress/vid-{rng.randrange(60)}", json=body)
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=learner, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} failed progress writes, e.g. {errors[:2]}")
    return latencies


def read_while_writing(base: str, readers: list[tuple[str, str]], writers: list[tuple[str, str]], seconds: float,
                       think_s: float, write_s: float, seed: int) -> tuple[list[float], list[float]]:
    """``run_clients`` for the readers while ``run_writers`` runs for the writers."""
    written: list[list[float]] = []
    writing = threading.Thread(target=lambda: written.append(run_writers(base, writers, seconds, write_s, seed)))
    writing.start()
    try:
        read = run_clients(base, readers, seconds, think_s, seed)
    finally:
        writing.join()
    if not written:
        raise SystemExit("the progress writers failed")
    return read, written[0]


def tablet_transport(n: int) -> httpx.HTTPTransport:
    """The connections of the ``n``-th tablet come from loopback address 127.0.0.<n + 2>."""
    return httpx.HTTPTransport(local_address=f"127.0.0.{n + 2}")


def login_burst(base: str, class_id: int, student_ids: list[int]) -> tuple[list[float], list[float]]:
    """Every pupil on a tablet of its own, behind a barrier: log in, then open the home page.
    Returns the latencies (ms) of the logins and of login + home page."""
    logins: list[float] = []
    totals: list[float] = []
    lock = threading.Lock()
    failures = []
    barrier = threading.Barrier(len(student_ids))

    def tablet(n: int, pid: int) -> None:
        with httpx.Client(base_url=base, timeout=60, transport=tablet_transport(n)) as http:
            barrier.wait()
            t0 = time.perf_counter()
            r = http.post("/api/v1/login/student", json={"class_id": class_id, "person_id": pid, "pin": PIN},
                          headers={"X-Requested-With": "XMLHttpRequest"})
            t1 = time.perf_counter()
            home = http.get("/student") if r.status_code == 200 else r
            t2 = time.perf_counter()
            if r.status_code != 200 or home.status_code != 200 or "学生" not in home.text:
                failures.append((r.status_code, home.status_code, r.text[:200]))
        with lock:
            logins.append((t1 - t0) * 1000)
            totals.append((t2 - t0) * 1000)

    threads = [threading.Thread(target=tablet, args=(n, pid)) for n, pid in enumerate(student_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} logins failed in the burst, e.g. {failures[:2]}")
    return logins, totals


def login_storm(base: str, class_id: int, student_ids: list[int], window_s: float, rng: random.Random) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    failures = []
    t_start = time.monotonic() + 0.5

    def tablet(n: int, pid: int, at: float) -> None:
        with httpx.Client(base_url=base, timeout=60, transport=tablet_transport(n)) as http:
            time.sleep(max(0.0, t_start + at - time.monotonic()))
            t0 = time.perf_counter()
            r = http.post("/api/v1/login/student", json={"class_id": class_id, "person_id": pid, "pin": PIN},
                          headers={"X-Requested-With": "XMLHttpRequest"})
            ms = (time.perf_counter() - t0) * 1000
            if r.status_code != 200:
                failures.append((r.status_code, r.text[:200]))
        with lock:
            latencies.append(ms)

    threads = [threading.Thread(target=tablet, args=(n, pid, rng.random() * window_s)) for n, pid in enumerate(student_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"{len(failures)} logins failed, e.g. {failures[:2]}")
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each read load runs")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--think-ms", type=float, default=500.0,
                        help="mean pause of a client between requests (a person reading the page); 0 = closed loop")
    parser.add_argument("--write-ms", type=float, default=1000.0,
                        help="mean pause of a learner between progress writes in the read-while-writing phase")
    parser.add_argument("--burst-rounds", type=int, default=3, help="how many times the class logs in at the same instant")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-spaces-"))
    data = tmp / "edge"
    config = EdgeConfig.load(data, {"free_space_reserve_mb": 1, "advertise": False})
    appliance = Appliance.open(config)
    t0 = time.monotonic()
    world = build(appliance, args.seed)
    built_s = time.monotonic() - t0
    db = appliance.db
    teacher_jobs, student_jobs, writer_jobs = [], [], []
    writers_rng = random.Random(args.seed + 1)  # its own, so the other phases draw what they always drew
    for n in range(CLIENTS):
        cid = world["classes"][1 + n * 3 % (CLASSES - 1)]
        token, _ = create_session(db, get_person(db, world["teachers"][cid][0]), "bench")
        teacher_jobs.append((token, f"/api/v1/classes/{cid}/progress"))
        token, _ = create_session(db, get_person(db, rng.choice(world["students"][cid])), "bench")
        student_jobs.append((token, "/api/v1/me/home"))
        writer_jobs.append(create_session(db, get_person(db, writers_rng.choice(world["students"][cid])), "bench"))
    appliance.close()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = None
    try:
        server = start_edge(data, port)
        think = args.think_ms / 1000
        progress = run_clients(base, teacher_jobs, args.seconds, think, args.seed)
        home = run_clients(base, student_jobs, args.seconds, think, args.seed)
        # for information: the same 30 clients with no pause at all (saturation)
        progress_sat = run_clients(base, teacher_jobs, args.seconds / 2, 0, args.seed)
        home_sat = run_clients(base, student_jobs, args.seconds / 2, 0, args.seed)
        # for information: the summaries while their classes work (mostly computed afresh)
        progress_rw, writes = read_while_writing(base, teacher_jobs, writer_jobs, args.seconds, think,
                                                 args.write_ms / 1000, args.seed)
        storm_class = world["classes"][0]
        storm = login_storm(base, storm_class, world["students"][storm_class], 10.0, rng)
        burst_login, burst = [], []
        for _ in range(args.burst_rounds):
            logins, totals = login_burst(base, storm_class, world["students"][storm_class])
            burst_login += logins
            burst += totals
    finally:
        if server is not None:
            stop(server)
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"data set built in {built_s:.1f} s: " + ", ".join(f"{k}={v}" for k, v in world["counts"].items()))
    print(f"think time: mean {args.think_ms:.0f} ms between a client's requests")
    print(f"{'measure':40} {'requests':>9} {'median ms':>10} {'p95 ms':>9} {'goal ms':>8}")
    for name, lat, goal in (("class progress (30 teachers)", progress, 100), ("student home (30 students)", home, 50),
                            ("class progress, closed loop (info)", progress_sat, None),
                            ("student home, closed loop (info)", home_sat, None),
                            ("class progress, classes working (info)", progress_rw, None),
                            ("progress writes meanwhile (info)", writes, None),
                            ("login storm (40 in 10 s)", storm, 1000),
                            ("login burst: login alone (info)", burst_login, None),
                            ("login burst: login + home (40 at once)", burst, 300)):
        print(f"{name:40} {len(lat):9d} {statistics.median(lat):10.1f} {p95(lat):9.1f} {goal if goal else '-':>8}")
    print(f"class_progress_p95_ms={p95(progress):.1f} student_home_p95_ms={p95(home):.1f} login_storm_p95_ms={p95(storm):.1f}"
          f" login_burst_p95_ms={p95(burst):.1f}")


if __name__ == "__main__":
    main()
