"""The demo's sample roster: synthetic people who can log in and find their work."""

from __future__ import annotations

from edge_agent.demo.run import load_sample_library
from edge_agent.spaces.roster import parse_roster
from edge_agent.demo.sample_roster import demo_lines, load_sample_roster, synthetic_roster


XRW = {"X-Requested-With": "XMLHttpRequest"}


def test_synthetic_roster_is_valid_and_deterministic():
    rows, problems = parse_roster(synthetic_roster())
    assert problems == [] and len(rows) == 24 and synthetic_roster() == synthetic_roster()
    assert len({r.name for r in rows if r.is_student}) == 20


def test_demo_teacher_and_students_log_in_with_the_printed_credentials(appliance, client, fast_kdf):
    load_sample_library(appliance, 12)
    creds = load_sample_roster(appliance)
    lines = "\n".join(demo_lines(creds, "http://127.0.0.1:8080"))
    name, pin = creds["students"][0]
    assert creds["teacher"][1] in lines and f"{name} {pin}" in lines
    r = client.post("/api/v1/login/staff", json={"number": "t001", "password": creds["teacher"][1]}, headers=XRW)
    assert r.status_code == 200 and r.json["must_change"] is False
    student = client.get(f"/api/v1/login/classes/{creds['class_id']}/students").json["students"][0]
    r = client.post("/api/v1/login/student", json={"class_id": creds["class_id"], "person_id": student["id"], "pin": pin}, headers=XRW)
    assert r.status_code == 200 and r.json["person"]["name"] == name
    home = client.get("/api/v1/me/home").json
    assert home["assignments"] and home["assignments"][0]["kind"] == "exercise"
    # a second demo start gives fresh credentials and changes nothing else
    again = load_sample_roster(appliance)
    assert again["teacher"][1] != creds["teacher"][1]
    assert appliance.db.execute("select count(*) from assignments").fetchone()[0] == 1
