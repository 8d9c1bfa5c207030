"""Per-student and per-teacher quotas: a hand-in or an upload that would pass the person's
limit (``student_quota_mb``, ``teacher_quota_mb``) is refused with 413 and a JSON body in
Chinese and English, and nothing of it is stored: no blob, no row, no journal event. Tested
on the served appliance, and with parallel hand-ins racing for the last megabyte."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Iterator

import httpx
import pytest

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.const import MIB
from edge_agent.spaces import quotas
from edge_agent.spaces.assignments import create_assignment, get_assignment
from edge_agent.spaces.errors import QuotaError
from edge_agent.spaces.people import get_person
from edge_agent.spaces.submissions import submit_work
from hub_sync.core.sqlite_db import open_db

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def photo(kib: int) -> bytes:
    """A PNG-typed file of ``kib`` KiB whose bytes are new each time (so each is its own blob)."""
    return PNG_HEADER + os.urandom(kib * 1024 - len(PNG_HEADER))


def blobs(data_dir) -> set[str]:
    content = data_dir / "content"
    return {d.name + f.name for d in content.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def counts(data_dir) -> dict:
    db = open_db(data_dir / "edge.db")
    try:
        return {t: db.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("submissions", "teacher_resources", "resources", "resource_files", "journal")}
    finally:
        db.close()


@pytest.fixture(scope="module")
def school(tmp_path_factory):
    """A served appliance with 1 MB quotas for pupils and teachers."""
    from edge_agent.demo.run import load_sample_library
    from fixtures.browser import prepare_school
    from fixtures.servers import ServerProcess, free_port

    data_dir = tmp_path_factory.mktemp("quota") / "data"
    data_dir.mkdir(parents=True)
    (data_dir / "settings.json").write_text('{"student_quota_mb": 1, "teacher_quota_mb": 1}')
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    load_sample_library(appliance)
    people = prepare_school(appliance)
    appliance.close()
    port = free_port()
    server = ServerProcess(["edge", "serve", "--data", str(data_dir), "--port", str(port), "--no-announce"], port).wait()
    yield server.base, data_dir, people
    server.stop()


@contextlib.contextmanager
def login(base, people, name=None) -> Iterator[httpx.Client]:
    """A client logged in as the teacher, or as the pupil ``name``."""
    with httpx.Client(base_url=base, timeout=20.0, headers={"X-Requested-With": "test"}) as c:
        if name is None:
            r = c.post("/api/v1/login/staff", json={"number": people.teacher, "password": people.password})
        else:
            who = people.students[name]
            r = c.post("/api/v1/login/student", json={"class_id": people.class_id, "person_id": who["id"], "pin": who["pin"]})
        assert r.status_code == 200, r.text
        c.headers["X-CSRF-Token"] = r.json()["csrf_token"]
        yield c


def hand_in(c: httpx.Client, people, data: bytes) -> httpx.Response:
    return c.post(f"/api/v1/assignments/{people.assignments['work']}/submissions",
                  data={"text": "我的画"}, files={"files": ("home.png", data, "image/png")})


def test_a_hand_in_past_the_students_quota_is_refused_and_nothing_is_kept(school):
    base, data_dir, people = school
    with login(base, people, "王小明") as pupil:
        assert hand_in(pupil, people, photo(600)).status_code == 201
        before, stored = counts(data_dir), blobs(data_dir)
        r = hand_in(pupil, people, photo(600))
        assert r.status_code == 413
        error = r.json()["error"]
        assert error["code"] == "quota_exceeded"
        assert "作业空间满了" in error["message"] and "hand-in space is full" in error["message_en"]
        assert error["details"]["limit_bytes"] == MIB and error["details"]["used_bytes"] >= 600 * 1024
        assert counts(data_dir) == before and blobs(data_dir) == stored
        # a little text still fits
        assert pupil.post(f"/api/v1/assignments/{people.assignments['work']}/submissions",
                          json={"text": "我画了我的家"}).status_code == 201
    with login(base, people, "张伟") as other:  # the quota is per pupil
        assert hand_in(other, people, photo(600)).status_code == 201


def test_an_upload_past_the_teachers_quota_is_refused_and_nothing_is_kept(school):
    base, data_dir, people = school
    with login(base, people) as teacher:
        ok = teacher.post("/api/v1/uploads", data={"title": "我的课件图片", "subject": "数学"},
                          files={"file": ("a.png", photo(700), "image/png")})
        assert ok.status_code == 201, ok.text
        before, stored = counts(data_dir), blobs(data_dir)
        r = teacher.post("/api/v1/uploads", data={"title": "第二张", "subject": "数学"},
                         files={"file": ("b.png", photo(700), "image/png")})
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "quota_exceeded"
        assert "上传空间满了" in r.json()["error"]["message"] and "teacher_quota_mb" in r.json()["error"]["message_en"]
        assert counts(data_dir) == before and blobs(data_dir) == stored


def test_parallel_hand_ins_cannot_slip_past_the_quota_together(appliance, world):
    student = get_person(world.db, world.ids["student2"])
    teacher = get_person(world.db, world.ids["teacher"])
    work = create_assignment(world.db, teacher, world.ids["class_a"], {"title": "交一张画"})
    before = set(appliance.store)
    results: list = []

    def one() -> None:
        try:
            results.append(submit_work(appliance.db, appliance.store, student, get_assignment(appliance.db, work["id"]),
                                       "", [("p.png", photo(300))], 2 * MIB, MIB))
        except QuotaError as exc:
            results.append(exc)
        finally:
            appliance.release()

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if not isinstance(r, QuotaError)]
    assert len(accepted) == 3 and len(results) == 8  # 3 x 300 KiB fit in 1 MiB, a fourth does not
    assert quotas.student_usage(world.db, student.id) <= MIB
    assert set(appliance.store) - before == {r["files"][0]["sha256"] for r in accepted}  # refused ones left nothing
