"""Helpers for the learning-space tests: cheap KDF parameters, synthetic rosters
(names made up by code, never real people) and a small school with one person
of every role, already logged in on demand."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field

from edge_agent.library.catalogue import Resource, ResourceFile
from edge_agent.demo.sample_library import exercise_set
from edge_agent.spaces import const
from edge_agent.spaces.login import issue_cards, reset_student_secret, set_staff_password
from edge_agent.spaces.people import find_by_number, get_person
from edge_agent.spaces.roster_apply import import_roster
from edge_agent.spaces.sessions import create_session

HEADER = "姓名,学籍号,教师编号,性别,年级,班级,角色,家长电话"
CLASS_A = "一年级(1)班"
CLASS_B = "二年级(1)班"
PASSWORD = "demo-pass-123"
ROLES = ("anonymous", "student", "other_student", "teacher", "other_teacher", "head_teacher", "admin", "technician",
         "parent", "other_parent")


def fast_kdf(monkeypatch) -> None:
    """argon2id with tiny costs: same code path, milliseconds instead of tenths."""
    for name in ("STAFF_KDF_MEMORY_KIB", "STUDENT_KDF_MEMORY_KIB"):
        monkeypatch.setattr(const, name, 64)
    monkeypatch.setattr(const, "STAFF_KDF_TIME_COST", 1)
    monkeypatch.setattr(const, "STUDENT_KDF_TIME_COST", 1)


def student_number(n: int) -> str:
    return f"G{110101201500000000 + n:018d}"


def roster_csv(lines: list[str]) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode("utf-8")


SCHOOL_ROSTER = [
    f"王小明,{student_number(1)},,男,一年级,{CLASS_A},学生,13800000001",
    f"李小红,{student_number(2)},,女,一年级,{CLASS_A},学生,",
    f"赵小刚,{student_number(3)},,男,二年级,{CLASS_B},学生,13800000003",
    f"陈老师,,t001,女,,{CLASS_A},教师,",
    f"刘老师,,t002,男,,{CLASS_B},教师,",
    f"孙老师,,t003,女,,{CLASS_A},班主任,",
    "周校长,,a001,男,,,管理员,",
    "吴师傅,,x001,男,,,技术员,",
]


@dataclass
class World:
    """A school: class A (two students, a teacher, a head teacher), class B, an admin,
    a technician, parents; an exercise assignment in class A; a submission; a message."""

    appliance: object
    client: object
    ids: dict = field(default_factory=dict)
    pins: dict = field(default_factory=dict)
    cards: dict = field(default_factory=dict)

    @property
    def db(self):
        return self.appliance.db

    def session(self, role: str) -> tuple[str, str] | None:
        if role == "anonymous":
            return None
        return create_session(self.db, get_person(self.db, self.ids[role]), "test")

    def call(self, role: str, method: str, url: str, json_body=None, data=None, headers=None, **kw):
        """A request as ``role`` (fresh session, CSRF header set)."""
        h = {"X-Requested-With": "test"}
        s = self.session(role)
        if s:
            h["Cookie"] = f"{const.SESSION_COOKIE}={s[0]}"
            h[const.CSRF_HEADER] = s[1]
        h.update(headers or {})
        # a cookie-less client, so the Cookie header we set is the only one sent
        r = self.client.application.test_client(use_cookies=False).open(url, method=method, json=json_body, data=data,
                                                                       headers=h, **kw)
        r.get_data()  # read and close file bodies (filterwarnings=error catches unclosed files)
        r.close()
        return r


def add_exercise(appliance, resource_id: str = "ex-1", attempts: int = 3) -> str:
    data = json.loads(exercise_set("加法练习", "数学", 1))
    data["attempts"] = attempts
    raw = json.dumps(data, ensure_ascii=False).encode()
    blob = appliance.store.put_bytes(raw)
    appliance.catalogue.upsert(Resource(id=resource_id, title="加法练习", kind="exercise", subject="数学", grade="一年级",
                                        files=[ResourceFile("exercise.json", blob.sha256, len(raw), "application/json")]))
    return resource_id


def add_video(appliance, resource_id: str = "vid-1") -> str:
    blob = appliance.store.put_bytes(b"\x00\x00\x00\x18ftypmp42" + b"0" * 100)
    appliance.catalogue.upsert(Resource(id=resource_id, title="认识图形", kind="video", subject="数学", grade="一年级",
                                        files=[ResourceFile("v.mp4", blob.sha256, 112, "video/mp4")]))
    return resource_id


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


def build_world(appliance, client) -> World:
    """Import the school roster, set known credentials, and create one of each object."""
    db = appliance.db
    import_roster(db, roster_csv(SCHOOL_ROSTER))
    w = World(appliance, client)
    numbers = {"student": student_number(1), "other_student": student_number(3), "teacher": "t001",
               "other_teacher": "t002", "head_teacher": "t003", "admin": "a001", "technician": "x001",
               "parent": "13800000001", "other_parent": "13800000003"}
    w.ids = {role: find_by_number(db, n).id for role, n in numbers.items()}
    w.ids["student2"] = find_by_number(db, student_number(2)).id
    for role in ("teacher", "other_teacher", "head_teacher", "admin", "technician", "parent", "other_parent"):
        set_staff_password(db, w.ids[role], PASSWORD, must_change=False)
    admin = get_person(db, w.ids["admin"])
    for role in ("student", "student2", "other_student"):
        w.pins[role] = reset_student_secret(db, admin, get_person(db, w.ids[role]))["pin"]
    w.ids["class_a"] = db.execute("select id from classes where name = ?", [CLASS_A]).fetchone()[0]
    w.ids["class_b"] = db.execute("select id from classes where name = ?", [CLASS_B]).fetchone()[0]
    student = get_person(db, w.ids["student"])
    w.cards = issue_cards(db, admin, [student])
    add_exercise(appliance)
    add_video(appliance)
    r = w.call("teacher", "POST", f"/api/v1/classes/{w.ids['class_a']}/assignments", {"resource_id": "ex-1"})
    assert r.status_code == 201, r.json
    w.ids["assignment"] = r.json["id"]
    r = w.call("student", "POST", f"/api/v1/assignments/{w.ids['assignment']}/submissions",
               data={"text": "我的作业", "files": (io.BytesIO(PNG), "photo.png")}, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    w.ids["submission"] = r.json["id"]
    r = w.call("teacher", "POST", f"/api/v1/classes/{w.ids['class_a']}/announcements", {"body": "明天带尺子"})
    assert r.status_code == 201, r.json
    w.ids["message"] = r.json["id"]
    r = w.call("teacher", "POST", "/api/v1/uploads", data={"file": (io.BytesIO(PNG), "pic.png"), "title": "我的图片",
                                                             "subject": "数学"}, content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    w.ids["upload"] = r.json["resource_id"]
    return w
