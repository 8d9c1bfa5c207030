"""On a real school LAN (the appliance and the tablets in two network namespaces joined by a
veth pair): a pupil's tablet at 10.77.0.x can fetch no exercise's answers, neither before
logging in nor with the pupil's own session, while the appliance keeps serving questions."""

from __future__ import annotations

from edge_agent.appliance import Appliance
from edge_agent.config import EdgeConfig
from edge_agent.demo.run import load_sample_library
from fixtures.browser import prepare_school
from fixtures.lan import CLIENT_IPS, NETNS

pytestmark = NETNS


def test_a_pupil_on_the_lan_cannot_fetch_the_answers(lan, tmp_path):
    data_dir = tmp_path / "data"
    appliance = Appliance.open(EdgeConfig.load(data_dir, {"free_space_reserve_mb": 1, "advertise": False}))
    load_sample_library(appliance)
    school = prepare_school(appliance)
    appliance.close()
    server = lan.serve_edge(data_dir)
    base = server.base

    exercises = lan.get(base + "/api/v1/resources?kind=exercise&limit=500").json()["resources"]
    urls = [u for r in exercises for f in r["files"] for u in (f["url"], f"/content/{f['sha256']}", f"/r/{r['id']}/{f['path']}")]
    assert urls

    who = school.students["王小明"]
    login = lan.request("POST", base + "/api/v1/login/student", source=CLIENT_IPS[1], headers={"X-Requested-With": "tablet"},
                        json={"class_id": school.class_id, "person_id": who["id"], "pin": who["pin"]})
    assert login.status_code == 200, login.text
    pupil = {"Cookie": "; ".join(f"{k}={v}" for k, v in login.cookies.items())}
    for headers in ({}, pupil):
        for url in urls:
            r = lan.get(base + url, source=CLIENT_IPS[1], headers=headers)
            assert r.status_code == 403, (url, r.status_code)
            assert "十二" not in r.text and '"answer"' not in r.text
    assignment = lan.get(base + f"/api/v1/assignments/{school.assignments['exercise']}", source=CLIENT_IPS[1],
                         headers=pupil)
    assert assignment.status_code == 200 and len(assignment.json()["questions"]) == 4
    assert "十二" not in assignment.text and "answer_key" not in assignment.text
